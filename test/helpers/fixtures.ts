// C fixture programs under test/fixtures/*.c, built with gcc into test/fixtures/bin/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
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
