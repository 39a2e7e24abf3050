// C fixture programs under test/fixtures/*.c, built with gcc into test/fixtures/bin/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';

export const fixturesDir = join(packageRoot(), 'test', 'fixtures');
export const fixturesBin = join(fixturesDir, 'bin');

export function buildFixtures(): void {
  mkdirSync(fixturesBin, { recursive: true });
  for (const f of readdirSync(fixturesDir)) {
    if (!f.endsWith('.c')) continue;
    const src = join(fixturesDir, f);
    const out = join(fixturesBin, f.slice(0, -2));
    if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs && statSync(out).mtimeMs > statSync(join(fixturesDir, 'fixture.h')).mtimeMs) continue;
    execFileSync('gcc', ['-O1', '-g', '-Wall', '-o', out, src, '-lm', '-lpthread'], { stdio: 'inherit' });
  }
}

export function fixture(name: string): string {
  return join(fixturesBin, name);
}
