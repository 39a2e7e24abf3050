// What a probe is, how one runs, and the throwaway stub child most of them work on.
//
// A probe answers "does this kernel do X for us?" by doing X once, for real: never by a
// version number or a config file. It returns a one-line detail when X worked and throws
// when it did not; runProbe turns that into ok/missing with a reason.
import { native, hasCode, isNativeError } from '../kernel/native.js';
import type { CapName } from '../kernel/capabilities.js';
import { waitInterrupted } from '../kernel/ptrace.js';
import { Remote } from '../kernel/remote.js';
import { PTRACE_O, SIG } from '../kernel/syscalls.js';
import { decodeStatus } from '../kernel/wait.js';
import type { Logger } from '../log.js';

export interface ProbeContext {
  log: Logger;
  /** The static stub program (build/Release/stub) probes run their syscalls in. */
  stubPath: string;
  /** Probe names to report missing without running them: the test-only fault switch. */
  forceMissing?: ReadonlySet<string>;
}

export interface Probe {
  /** Stable name, as given to `check --feature`. */
  name: string;
  /** What is tried, for humans. */
  title: string;
  /** Dump and restore cannot work without it. */
  required: boolean;
  /** What will not work when it is missing. */
  affects: string;
  /** Capabilities whose absence explains an EPERM here. */
  needs: readonly CapName[];
  /** Does the thing once; returns a short detail, throws when it cannot be done. */
  run(ctx: ProbeContext): string | Promise<string>;
}

export type ProbeStatus = 'ok' | 'missing';

export interface ProbeResult {
  name: string;
  title: string;
  status: ProbeStatus;
  required: boolean;
  affects: string;
  /** The detail on success; on failure what failed and why (errno, missing capability). */
  reason: string;
}

/** Thrown by a probe when the kernel answered, but not as criu-ts needs. */
export class ProbeMismatch extends Error {
  override name = 'ProbeMismatch';
}

export async function runProbe(probe: Probe, ctx: ProbeContext): Promise<ProbeResult> {
  const base = { name: probe.name, title: probe.title, required: probe.required, affects: probe.affects };
  if (ctx.forceMissing?.has(probe.name)) {
    return { ...base, status: 'missing', reason: 'forced missing by CRIU_TS_FORCE_MISSING' };
  }
  ctx.log.debug(`check: probe ${probe.name}: ${probe.title}`);
  try {
    const detail = await probe.run(ctx);
    ctx.log.info(`check: probe ${probe.name}: ok: ${detail}`);
    return { ...base, status: 'ok', reason: detail };
  } catch (e) {
    const reason = describeFailure(e, probe.needs);
    ctx.log.info(`check: probe ${probe.name}: missing: ${reason}`);
    if (ctx.log.verbosity >= 4 && e instanceof Error && e.stack) ctx.log.debug(e.stack);
    return { ...base, status: 'missing', reason };
  }
}

/** One line: the failing call and errno, plus the capability an EPERM most likely means. */
export function describeFailure(e: unknown, needs: readonly CapName[]): string {
  const msg = e instanceof Error ? e.message : String(e);
  const code = isNativeError(e) ? e.code : hasCode(e, 'EPERM', 'EACCES') ? (e as Error & { code: string }).code : '';
  if ((code === 'EPERM' || code === 'EACCES') && needs.length) {
    return `${msg}; needs ${needs.map((n) => `CAP_${n}`).join(' or ')}`;
  }
  return msg;
}

export interface Stub {
  pid: number;
  remote: Remote;
}

/**
 * Runs fn on a fresh stub child: created by clone3 and exec'd under ptrace, unknown to libuv
 * (a child_process child would be, and libuv takes any ptrace stop of its children for an
 * exit). The stub is killed and reaped afterwards, whatever fn did, so no probe leaves a
 * process or a zombie behind.
 *
 * clone3Stub returns the stub in its PTRACE_EVENT_EXEC stop, which is inside execve: the
 * first syscall injected from there finds its number overwritten by execve's return value
 * and runs as read(). So the stub is first let run into its pause() loop and interrupted,
 * which is also the state dump finds its threads in.
 */
export async function withStub<T>(ctx: ProbeContext, fn: (stub: Stub) => T | Promise<T>): Promise<T> {
  const pid = native.clone3Stub(0, ctx.stubPath, PTRACE_O.EXITKILL);
  try {
    native.ptraceCont(pid, 0);
    native.ptraceInterrupt(pid);
    waitInterrupted(pid);
    return await fn({ pid, remote: Remote.forThread(pid) });
  } finally {
    killAndReap(pid);
  }
}

/** SIGKILL a traced child and wait until it is gone (ptrace stops may come first). */
export function killAndReap(pid: number): void {
  try {
    native.kill(pid, SIG.KILL);
  } catch {
    // Already dead: still reap it below.
  }
  for (let i = 0; i < 100; i++) {
    let status: number;
    try {
      ({ status } = native.waitpid(pid, 0));
    } catch {
      return; // ECHILD: already reaped
    }
    const s = decodeStatus(status);
    if (s.kind === 'exited' || s.kind === 'signaled') return;
  }
}
