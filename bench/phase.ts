// What the newer benches (lazy.ts, scale.ts) share: measured phases that wait for an idle
// machine first and run again when other work disturbed them (as run.ts does), the bench's
// own priority, building a victim, and killing and reaping whole process trees.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { native } from '../src/kernel/native.js';
import { SIG } from '../src/kernel/syscalls.js';
import { packageRoot } from '../src/paths.js';
import { buildFixtures, fixture } from '../test/helpers/fixtures.js';
import { othersSince, snapshot, waitIdle } from './cpu.js';

/** Other work on the machine during a phase, and how long we waited for it to calm down. */
export interface Load {
  /** Cores' worth of CPU used by everything but this process during the phase. */
  otherCores: number;
  /** Cores' worth of CPU used by this process (all its threads) during the phase. */
  ownCores: number;
  waitedMs: number;
  /** False when the machine was still busy after --wait-idle seconds. */
  wasIdle: boolean;
  /** Runs of the phase (the last one is recorded). */
  attempts: number;
}

export interface PhaseOptions {
  /** Wait up to this long for the machine to be idle before each phase (0: never). */
  waitIdleS: number;
  /** Runs again (up to this many times) when others used more than maxOthers cores. */
  retries: number;
  maxOthers: number;
  progress: (s: string) => void;
}

/** A runner of phases: each waits for idle, measures the load meanwhile, and may run again. */
export function phaseRunner(o: PhaseOptions) {
  return async <T>(label: string, fn: () => Promise<T>, undo?: (r: T) => Promise<void> | void): Promise<[T, Load]> => {
    for (let attempt = 1; ; attempt++) {
      const w = o.waitIdleS > 0 ? await waitIdle(o.waitIdleS * 1000) : { waitedMs: 0, idle: true };
      if (!w.idle) o.progress(`warning: the machine is still busy after ${o.waitIdleS} s; measuring anyway`);
      const s = snapshot();
      const r = await fn();
      const load: Load = { ...othersSince(s), waitedMs: w.waitedMs, wasIdle: w.idle, attempts: attempt };
      if (load.otherCores <= o.maxOthers || attempt > o.retries) return [r, load];
      o.progress(`${label}: other work used ${load.otherCores.toFixed(2)} cores meanwhile; again`);
      await undo?.(r);
    }
  };
}

/** setpriority on every thread of this process (threads made later inherit it). */
export function setNice(nice: number): void {
  if (!nice) return;
  for (const t of readdirSync('/proc/self/task')) setPriority(Number(t), nice);
}

/** Builds bench/NAME.c (which may #include victim.c) into dist/bench/bin when missing or stale. */
export function buildBenchBinary(name: string, binName: string, flags: string[] = []): string {
  const root = packageRoot();
  const sources = [join(root, 'bench', `${name}.c`), join(root, 'bench', 'victim.c')];
  const binary = join(root, 'dist', 'bench', 'bin', binName);
  if (!existsSync(fixture('launch'))) buildFixtures();
  if (existsSync(binary) && sources.every((s) => statSync(binary).mtimeMs > statSync(s).mtimeMs)) return binary;
  mkdirSync(join(root, 'dist', 'bench', 'bin'), { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', ...flags, '-o', binary, sources[0]!], { stdio: 'inherit' });
  return binary;
}

/** pid and its descendants (children of any of its threads), parents first. */
export function treePids(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids: number[] = [];
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        /* the thread is gone */
      }
      for (const k of kids) if (!out.includes(k)) walk(k);
    }
  };
  walk(pid);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGKILLs every pid, then waits until each is gone: reaps those that are our children (the
 * restored root, and orphans that came back to us as subreaper); others are reaped by their
 * own parent (a victim's shell).
 */
export async function killAll(pids: number[], timeoutMs = 30_000): Promise<void> {
  for (const p of pids) {
    try {
      native.kill(p, SIG.KILL);
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + timeoutMs;
  const left = new Set(pids);
  while (left.size) {
    for (const p of [...left]) {
      try {
        if (native.waitpid(p, 1 /* WNOHANG */).pid === p) left.delete(p);
      } catch {
        // ECHILD: not ours (yet): done once the pid is free.
        if (!existsSync(`/proc/${p}`)) left.delete(p);
      }
    }
    if (!left.size) break;
    if (Date.now() > deadline) throw new Error(`pids ${[...left].join(', ')} still exist after ${timeoutMs} ms`);
    await sleep(5);
  }
}
