// Per-thread state and the final hand-over: rseq, robust list, tid address, alternate
// stack, pending signals, blocked mask, then registers (with the syscall-restart fix-up)
// and the extended FPU state.
import type { Core } from '../images/core.js';
import { native } from '../kernel/native.js';
import { getReg, getRegSigned, regsFromJson, setReg } from '../kernel/regs.js';
import { ERESTART, NT, SYS } from '../kernel/syscalls.js';
import { putBytes } from './remote-args.js';
import type { Stub } from './stub.js';
import type { Remote } from '../kernel/remote.js';

const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const EINTR = 4;
const TIMER_ABSTIME = 1;

/** The thread's own kernel state, by syscalls injected into that thread (r). */
export function restoreThreadState(stub: Stub, r: Remote, c: Core): void {
  if (c.rseq) r.call(SYS.rseq, 'rseq', BigInt(c.rseq.ptr), c.rseq.size, 0, c.rseq.signature);
  r.call(SYS.set_robust_list, 'set_robust_list', BigInt(c.robustList.head), c.robustList.len);
  r.call(SYS.set_tid_address, 'set_tid_address', BigInt(c.tidAddress));
  if (!(c.sigaltstack.flags & SS_DISABLE)) {
    const ss = Buffer.alloc(24);
    ss.writeBigUInt64LE(BigInt(c.sigaltstack.sp), 0);
    ss.writeInt32LE(c.sigaltstack.flags & ~SS_ONSTACK, 8);
    ss.writeBigUInt64LE(BigInt(c.sigaltstack.size), 16);
    r.call(SYS.sigaltstack, 'sigaltstack', putBytes(stub, ss), 0);
  }
}

/**
 * Queues the saved pending signals again. Everything is blocked meanwhile, so none is
 * delivered while we still inject; the real mask is set after.
 */
export function requeueSignals(stub: Stub, r: Remote, pid: number, tid: number, c: Core, shared: string[]): void {
  native.ptraceSetSigmask(tid, ~0n);
  for (const s of c.pending) {
    const info = Buffer.from(s, 'base64');
    r.call(SYS.rt_tgsigqueueinfo, 'rt_tgsigqueueinfo', pid, tid, info.readInt32LE(0), putBytes(stub, info));
  }
  for (const s of shared) {
    const info = Buffer.from(s, 'base64');
    r.call(SYS.rt_sigqueueinfo, 'rt_sigqueueinfo', pid, info.readInt32LE(0), putBytes(stub, info));
  }
}

/** The registers a restored thread resumes with: an interrupted syscall restarts as it would have. */
export function restartRegs(c: Core): Buffer {
  const regs = regsFromJson(c.regs);
  let orig = getRegSigned(regs, 'orig_rax');
  // restart_syscall cannot restart anything in a new process: run the call it stood for.
  if (orig === BigInt(SYS.restart_syscall)) orig = c.restartSyscall !== undefined ? BigInt(c.restartSyscall) : orig;
  const rax = getRegSigned(regs, 'rax');
  if (orig >= 0n) {
    if (rax === -BigInt(ERESTART.SYS) || rax === -BigInt(ERESTART.NOINTR) || rax === -BigInt(ERESTART.NOHAND)) {
      setReg(regs, 'rax', orig);
      setReg(regs, 'rip', getRegSigned(regs, 'rip') - 2n);
    } else if (rax === -BigInt(ERESTART.RESTARTBLOCK) && orig === BigInt(SYS.restart_syscall)) {
      // We could not tell which call it was: it returns EINTR, as CRIU does.
      setReg(regs, 'rax', -EINTR);
    } else if (rax === -BigInt(ERESTART.RESTARTBLOCK)) {
      // The kernel would resume through its restart block, which a new process has not got.
      // Run the syscall again instead: a relative (clock_)nanosleep has written the time
      // left into *rem, so it sleeps on from there; other timeouts (poll ...) start afresh.
      setReg(regs, 'rax', orig);
      setReg(regs, 'rip', getRegSigned(regs, 'rip') - 2n);
      if (orig === BigInt(SYS.nanosleep) && getReg(regs, 'rsi') !== 0n) setReg(regs, 'rdi', getReg(regs, 'rsi'));
      if (orig === BigInt(SYS.clock_nanosleep) && !(getReg(regs, 'rsi') & BigInt(TIMER_ABSTIME)) && getReg(regs, 'r10') !== 0n) {
        setReg(regs, 'rdx', getReg(regs, 'r10'));
      }
    }
  }
  setReg(regs, 'orig_rax', -1n);
  return regs;
}

/** Whether the thread resumes at a syscall instruction, to run again the call it was in. */
export function entersSyscall(c: Core): boolean {
  return getReg(restartRegs(c), 'rip') !== getReg(regsFromJson(c.regs), 'rip');
}

export function setFinalRegs(tid: number, c: Core): void {
  native.ptraceSetSigmask(tid, BigInt(c.sigmask));
  native.ptraceSetRegs(tid, restartRegs(c));
  native.ptraceSetRegset(tid, NT.X86_XSTATE, Buffer.from(c.xstate, 'base64'));
}
