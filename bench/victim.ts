// The bench victim (bench/victim.c): built with gcc into dist/bench/bin, started as a
// grandchild under a shell (test/helpers/target.ts: never ptrace a direct child of Node's
// child_process), with N MiB of touched, semi-compressible memory.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { buildFixtures, fixture } from '../test/helpers/fixtures.js';
import { startTarget, type Target } from '../test/helpers/target.js';

const root = packageRoot();
const source = join(root, 'bench', 'victim.c');
const binary = join(root, 'dist', 'bench', 'bin', 'bench-victim');

/** Builds the victim (and the tests' launcher) when missing or stale. */
export function buildVictim(): void {
  if (!existsSync(fixture('launch'))) buildFixtures();
  if (existsSync(binary) && statSync(binary).mtimeMs > statSync(source).mtimeMs) return;
  mkdirSync(join(root, 'dist', 'bench', 'bin'), { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-o', binary, source], { stdio: 'inherit' });
}

export interface Victim {
  target: Target;
  pid: number;
  /** The filled region. */
  addr: number;
  bytes: number;
  /** Time the victim took to map and fill its memory (first touches included). */
  fillMs: number;
}

export async function startVictim(sizeMiB: number): Promise<Victim> {
  const t0 = performance.now();
  const target = await startTarget(binary, [String(sizeMiB)]);
  try {
    await target.waitFor('ready', 600_000);
  } catch (e) {
    await target.stop();
    throw e;
  }
  const fillMs = performance.now() - t0;
  const line = target.lines.find((l) => l.startsWith('region '));
  const m = line && /^region (0x[0-9a-f]+) (\d+)$/.exec(line);
  if (!m) {
    await target.stop();
    throw new Error(`bench victim: no region line in its output: ${target.lines.join(' | ')}`);
  }
  return { target, pid: target.pid, addr: parseInt(m[1]!, 16), bytes: Number(m[2]), fillMs };
}

/** Waits until pid has been reaped by whoever is its parent (it may be a zombie a moment). */
export async function waitGone(pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still exists after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Kills the victim and waits until its shell has reaped it and its PID is free. */
export async function stopVictim(v: Victim): Promise<void> {
  await v.target.stop();
  await waitGone(v.pid);
}
