// What is left of a PID after a dump or a restore: nothing, a zombie (ours to reap: the test
// worker is a child subreaper), or a live process, asleep or traced. Read from /proc.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../../src/kernel/native.js';
import { WNOHANG } from '../../src/kernel/syscalls.js';
import { decodeStatus, type WaitState } from '../../src/kernel/wait.js';

export interface ProcState {
  /** One letter, as in /proc/PID/stat: R, S, D, T, t (traced), Z ... */
  state: string;
  ppid: number;
  /** The pid of the tracer, 0 if none. */
  tracerPid: number;
}

/** The state of pid, or null when /proc/PID is gone (nothing left, not even a zombie). */
export function procState(pid: number): ProcState | null {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tracer = /^TracerPid:\s*(\d+)/m.exec(status);
  return { state: fields[0]!, ppid: Number(fields[1]), tracerPid: tracer ? Number(tracer[1]) : 0 };
}

/** Resolves once pid sleeps (state S) untraced: back in the call it waits in, free to take a signal. */
export async function waitAsleep(pid: number, timeoutMs = 10_000): Promise<ProcState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = procState(pid);
    if (st && st.state === 'S' && st.tracerPid === 0) return st;
    if (Date.now() > deadline) throw new Error(`pid ${pid} does not go back to sleep untraced: ${JSON.stringify(st)}`);
    await sleep(5);
  }
}

/**
 * Waits until pid is gone or a zombie (a process being killed takes a moment to die), and
 * reaps it if it is a zombie of ours. Returns what the reap found, or null if there was
 * nothing to reap. Throws if it stays alive, or is a zombie someone else must reap.
 */
export async function reapIfOurs(pid: number, timeoutMs = 10_000): Promise<WaitState | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = procState(pid);
    if (st === null) return null;
    if (st.state === 'Z') {
      if (st.ppid !== process.pid) throw new Error(`pid ${pid} is a zombie of ${st.ppid}, not of this test worker (${process.pid})`);
      const r = native.waitpid(pid, WNOHANG);
      if (r.pid === pid) return decodeStatus(r.status);
    }
    if (Date.now() > deadline) throw new Error(`pid ${pid} is still there: ${JSON.stringify(st)}`);
    await sleep(5);
  }
}

/** Resolves with the first line matching in a growing array of lines (output of a process). */
export async function lineIn(lines: readonly string[], match: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = lines.find((l) => match.test(l));
    if (hit !== undefined) return hit;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${match}; lines so far:\n${lines.join('\n')}`);
    await sleep(10);
  }
}
