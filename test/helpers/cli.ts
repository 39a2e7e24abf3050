// Running the real CLI (node bin/criu-ts.js) as a subprocess, and a dump + restore cycle
// of a fixture that verifies itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { native } from '../../src/kernel/native.js';
import { startTarget, type Target } from './target.js';

export const cliPath = join(packageRoot(), 'bin', 'criu-ts.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The child's exit, once what it wrote before exiting has been read: 'exit' can come before
 * the last 'data' of its pipes. Not 'close': a restored --shell-job process may hold the
 * pipes open long after criu-ts has gone, so the wait for the ends is bounded.
 */
async function exitedAndRead(p: ChildProcess): Promise<[number | null, NodeJS.Signals | null]> {
  const ended = [p.stdout!, p.stderr!].map((s) => (s.readableEnded ? Promise.resolve() : once(s, 'end').then(() => {}, () => {})));
  const r = (await once(p, 'exit')) as [number | null, NodeJS.Signals | null];
  await Promise.race([Promise.all(ended), new Promise((res) => setTimeout(res, 200))]);
  return r;
}

/** Runs criu-ts to completion. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const p = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code, signal] = await exitedAndRead(p);
  return { code, signal, stdout, stderr };
}

/** A running criu-ts process whose output lines we can wait for (a foreground restore). */
export class CliProcess {
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  private waiters: Array<() => void> = [];

  constructor(readonly proc: ChildProcess) {
    const lines = (into: string[]) => {
      let partial = '';
      return (d: string) => {
        partial += d;
        const parts = partial.split('\n');
        partial = parts.pop()!;
        into.push(...parts);
        for (const w of this.waiters.splice(0)) w();
      };
    };
    proc.stdout!.setEncoding('utf8').on('data', lines(this.out));
    proc.stderr!.setEncoding('utf8').on('data', lines(this.err));
    this.exited = exitedAndRead(proc);
  }

  /** afterExit: keep waiting once criu-ts has exited (a -d restore's process still writes to our pipes). */
  async waitFor(where: 'out' | 'err', match: RegExp, timeoutMs = 30_000, afterExit = false): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const l of this[where]) {
        const m = match.exec(l);
        if (m) return m;
      }
      if (!afterExit && (this.proc.exitCode !== null || this.proc.signalCode !== null)) {
        throw new Error(`criu-ts exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${match}:\n${this.err.join('\n')}\n${this.out.join('\n')}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${match}:\n${this.err.join('\n')}\n${this.out.join('\n')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  write(s: string): void {
    this.proc.stdin!.write(s);
  }
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return new CliProcess(spawn(process.execPath, [cliPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

export function tempDir(prefix = 'criu-ts-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Kills a pid that may have been reparented to us (we are a subreaper) and reaps it. */
export function killAndReap(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  try {
    native.waitpid(pid, 0);
  } catch {
    /* not our child: its parent reaps it */
  }
}

export interface CycleResult {
  dump: CliResult;
  restore: CliProcess;
  pid: number;
}

/**
 * Starts `fixture`, waits for `ready`, dumps it (--shell-job), waits for the original to be
 * gone, and starts a foreground restore, resolving once the restored process runs.
 */
export async function dumpAndRestore(fixturePath: string, args: string[], imagesDir: string, extraDump: string[] = []): Promise<CycleResult & { target: Target }> {
  const target = await startTarget(fixturePath, args);
  await target.waitFor('ready');
  const d = await runCli(['dump', '-t', String(target.pid), '-D', imagesDir, '--shell-job', ...extraDump]);
  if (d.code !== 0) {
    await target.stop();
    throw new Error(`dump failed (${d.code}): ${d.stderr}`);
  }
  await target.exited;
  const restore = startCli(['-v2', 'restore', '-D', imagesDir, '--shell-job']);
  await restore.waitFor('err', /restored pid (\d+)/);
  return { dump: d, restore, pid: target.pid, target };
}
