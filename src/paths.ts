// Where the package's own files are, whether code runs from src/ (tests) or dist/src/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'criu-ts') return (cached = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('criu-ts: cannot find the package root');
    dir = up;
  }
}

/** Compiled module paths (workers, servers) always come from dist, even under vitest. */
export function distModule(rel: string): string {
  return join(packageRoot(), 'dist', 'src', rel);
}

export function toolVersion(): string {
  return JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version as string;
}
