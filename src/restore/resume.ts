// Letting restored threads go. A thread that was in a syscall resumes at its `syscall`
// instruction. Let go there, a signal arriving before it has run that instruction would be
// handled first, and the syscall would then start again instead of failing with EINTR (a
// nanosleep meant to be cut short sleeps on; a pause() after its handler set the flag never
// returns). So each such thread first runs under ptrace to its syscall-entry stop and is let
// go there: a later signal interrupts the syscall as it would have interrupted the original.
import { native } from '../kernel/native.js';
import { detach } from '../kernel/ptrace.js';
import { PTRACE_O, SIG, WNOHANG } from '../kernel/syscalls.js';
import { decodeStatus } from '../kernel/wait.js';
import type { Logger } from '../log.js';

/** How long threads may take to reach their syscall; after it they are let go where they are. */
const ENTRY_WAIT_MS = 1000;

/** Detaches every thread; those in `entering` once they have entered their syscall again. */
export function resumeThreads(tids: number[], entering: Set<number>, log: Logger): void {
  // Waits are synchronous: ptrace requests for these threads must come from this JS thread.
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const pending = new Set<number>();
  for (const tid of tids) {
    if (!entering.has(tid)) continue;
    native.ptraceSetOptions(tid, PTRACE_O.EXITKILL | PTRACE_O.TRACESYSGOOD);
    native.ptraceSyscall(tid, 0);
    pending.add(tid);
  }
  const deadline = Date.now() + ENTRY_WAIT_MS;
  while (pending.size && Date.now() < deadline) {
    for (const tid of pending) {
      const { pid, status } = native.waitpid(tid, WNOHANG);
      if (pid === 0) continue;
      const s = decodeStatus(status);
      if (s.kind !== 'stopped') {
        pending.delete(tid); // gone (killed meanwhile): nothing to let go
      } else if (s.event === 0 && s.signal === (SIG.TRAP | 0x80)) {
        detach(tid, 0); // at the syscall's entry: it runs on as the original did
        pending.delete(tid);
      } else if (s.event === 0) {
        // A signal came first (sent during the restore): let the thread go with it, as it
        // would have gone without this step. Its handler may touch memory that a lazy
        // restore has yet to serve, so it must not run while we wait here.
        detach(tid, s.signal);
        pending.delete(tid);
      } else {
        native.ptraceSyscall(tid, 0);
      }
    }
    if (pending.size) Atomics.wait(nap, 0, 0, 0.05);
  }
  for (const tid of pending) {
    // Not there in time (one instruction away: only a machine too busy to run it): stop it
    // and let it go from wherever it is.
    log.debug(`thread ${tid} did not reach its syscall in ${ENTRY_WAIT_MS} ms; let go where it is`);
    letGoAnywhere(tid);
  }
  for (const tid of tids) if (!entering.has(tid)) native.ptraceDetach(tid, 0);
}

function letGoAnywhere(tid: number): void {
  try {
    native.ptraceInterrupt(tid);
  } catch {
    return; // gone
  }
  const s = decodeStatus(native.waitpid(tid, 0).status);
  if (s.kind !== 'stopped') return;
  // A signal-delivery stop keeps its signal; the interrupt's own stop (or a syscall stop) none.
  detach(tid, s.event === 0 && s.signal !== (SIG.TRAP | 0x80) ? s.signal : 0);
}
