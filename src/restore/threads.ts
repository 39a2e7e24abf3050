// The other threads of a process, each with its original TID: clone3 with set_tid and the
// thread flags, injected into the leader while it is traced with PTRACE_O_TRACECLONE, so
// each new thread is caught in a stop before its first instruction. Its registers, set
// later, decide where it starts; until then it never runs.
import { CriuError } from '../errors.js';
import { native, hasCode } from '../kernel/native.js';
import { waitStop } from '../kernel/ptrace.js';
import { describePid } from '../kernel/procfs.js';
import { PTRACE_EVENT, PTRACE_O, SYS } from '../kernel/syscalls.js';
import { putBytes } from './remote-args.js';
import type { Stub } from './stub.js';

const CLONE_VM = 0x100;
const CLONE_FS = 0x200;
const CLONE_FILES = 0x400;
const CLONE_SIGHAND = 0x800;
const CLONE_THREAD = 0x10000;
const CLONE_SYSVSEM = 0x40000;
const THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
const CLONE_ARGS_SIZE = 88;

/** struct clone_args (VER2) for a thread with TID `tid`; the set_tid array follows it. */
function cloneArgs(setTidAddr: number): Buffer {
  const b = Buffer.alloc(CLONE_ARGS_SIZE);
  b.writeBigUInt64LE(BigInt(THREAD_FLAGS), 0); // flags
  // pidfd, child_tid, parent_tid, exit_signal (0: a thread), stack, stack_size, tls: 0
  b.writeBigUInt64LE(BigInt(setTidAddr), 64); // set_tid
  b.writeBigUInt64LE(1n, 72); // set_tid_size
  return b;
}

/** Creates every thread of `tids` but the leader; returns once each sits in its first stop. */
export function createThreads(stub: Stub, tids: number[]): void {
  const others = tids.filter((t) => t !== stub.pid);
  if (!others.length) return;
  native.ptraceSetOptions(stub.pid, PTRACE_O.EXITKILL | PTRACE_O.TRACECLONE);
  for (const tid of others) {
    const ids = Buffer.alloc(4);
    ids.writeInt32LE(tid, 0);
    const setTid = putBytes(stub, ids, 256);
    const args = putBytes(stub, cloneArgs(setTid), 0);
    let got: number;
    try {
      got = stub.remote.call(SYS.clone3, `clone3(set_tid ${tid})`, args, CLONE_ARGS_SIZE);
    } catch (e) {
      if (hasCode(e, 'EEXIST')) throw new CriuError('EEXIST', `TID ${tid} is taken by ${describePid(tid) ?? 'another thread or process'}`, { cause: e });
      throw e;
    }
    if (got !== tid) throw new CriuError('EINVAL', `clone3 made thread ${got}, not ${tid}`);
    // Auto-attached through TRACECLONE: its first report is a PTRACE_EVENT_STOP.
    const s = waitStop(tid);
    if (s.event !== PTRACE_EVENT.STOP) throw new CriuError('EPROTO', `thread ${tid}: unexpected first stop (signal ${s.signal}, event ${s.event})`);
  }
  native.ptraceSetOptions(stub.pid, PTRACE_O.EXITKILL);
}
