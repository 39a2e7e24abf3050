// Loads the addon and the restore stub built by `npm install` (binding.gyp at the root).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeApi, NativeError } from './native-api.js';

export type { NativeApi, NativeError } from './native-api.js';

/** The package root, found from this file whether it runs from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'criu-ts') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('criu-ts: cannot find the package root');
    dir = up;
  }
}

const root = packageRoot();
const addonPath = join(root, 'build', 'Release', 'criu_native.node');

function load(): NativeApi {
  if (!existsSync(addonPath)) {
    throw new Error(`criu-ts: the native addon is not built (${addonPath}); run npm install`);
  }
  return createRequire(import.meta.url)(addonPath) as NativeApi;
}

export const native: NativeApi = load();

/** The static program a restore grows a process out of. */
export const stubPath = join(root, 'build', 'Release', 'stub');

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as NativeError).code === 'string' && typeof (e as NativeError).errno === 'number';
}

export function hasCode(e: unknown, ...codes: string[]): boolean {
  return e instanceof Error && codes.includes((e as { code?: string }).code ?? '');
}
