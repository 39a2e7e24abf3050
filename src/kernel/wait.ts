// Decoding waitpid statuses, including ptrace's event stops (status >> 16).
import { PTRACE_EVENT, SIG } from './syscalls.js';

export type WaitState =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: number; core: boolean }
  | { kind: 'stopped'; signal: number; event: number }
  | { kind: 'continued' };

export function decodeStatus(status: number): WaitState {
  const low = status & 0x7f;
  if (low === 0) return { kind: 'exited', code: (status >> 8) & 0xff };
  if ((status & 0xff) === 0x7f) return { kind: 'stopped', signal: (status >> 8) & 0xff, event: (status >> 16) & 0xff };
  if (status === 0xffff) return { kind: 'continued' };
  return { kind: 'signaled', signal: low, core: (status & 0x80) !== 0 };
}

/** A PTRACE_EVENT_STOP: the stop PTRACE_INTERRUPT (or a group stop) produces. */
export function isEventStop(s: WaitState): boolean {
  return s.kind === 'stopped' && s.event === PTRACE_EVENT.STOP;
}

/** A signal-delivery-stop: the signal is about to be delivered unless the tracer drops it. */
export function isSignalStop(s: WaitState): s is { kind: 'stopped'; signal: number; event: number } {
  return s.kind === 'stopped' && s.event === 0 && s.signal !== (SIG.TRAP | 0x80);
}

export function describeStatus(s: WaitState): string {
  switch (s.kind) {
    case 'exited':
      return `exited with status ${s.code}`;
    case 'signaled':
      return `killed by signal ${s.signal}${s.core ? ' (core dumped)' : ''}`;
    case 'stopped':
      return `stopped by signal ${s.signal}${s.event ? ` (ptrace event ${s.event})` : ''}`;
    case 'continued':
      return 'continued';
  }
}
