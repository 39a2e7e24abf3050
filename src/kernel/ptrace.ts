// Seizing and releasing threads. All calls for one tracee must come from the thread that
// seized it: we keep them on the JS main thread, synchronously.
import { native } from './native.js';
import { CriuError } from './errors.js';
import { PTRACE_EVENT } from './syscalls.js';
import { decodeStatus, describeStatus, type WaitState } from './wait.js';

export interface StopInfo {
  /** The thread was already in a group stop (SIGSTOP etc.) when seized. */
  groupStopped: boolean;
  stopSignal: number;
}

/** Waits for the next stop of `tid`; throws if it exited instead. */
export function waitStop(tid: number): WaitState & { kind: 'stopped' } {
  const { status } = native.waitpid(tid, 0);
  const s = decodeStatus(status);
  if (s.kind !== 'stopped') throw new CriuError('ESRCH', `thread ${tid} ${describeStatus(s)} while being stopped`);
  return s;
}

/**
 * PTRACE_SEIZE + PTRACE_INTERRUPT, then wait for the interrupt's event stop. A signal that
 * was being delivered at that moment is let through (it would have been anyway), and we
 * wait again for the interrupt.
 */
export function seizeAndStop(tid: number, options: number): StopInfo {
  native.ptraceSeize(tid, options);
  native.ptraceInterrupt(tid);
  return waitInterrupted(tid);
}

export function waitInterrupted(tid: number): StopInfo {
  for (let i = 0; i < 1000; i++) {
    const s = waitStop(tid);
    if (s.event === PTRACE_EVENT.STOP) {
      // In a group stop the event stop reports the stopping signal; after an interrupt of a
      // running thread it reports SIGTRAP.
      const groupStopped = s.signal !== 5;
      return { groupStopped, stopSignal: groupStopped ? s.signal : 0 };
    }
    if (s.event !== 0) {
      // fork/clone/exec events of a thread we just seized: let it go on to the interrupt.
      native.ptraceCont(tid, 0);
      continue;
    }
    native.ptraceCont(tid, s.signal);
  }
  throw new CriuError('EAGAIN', `thread ${tid} did not stop`);
}

/** Detach, ignoring a thread that has already gone. */
export function detach(tid: number, sig = 0): void {
  try {
    native.ptraceDetach(tid, sig);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ESRCH') throw e;
  }
}
