// The process tree: every process created by its own restored parent (a fork injected into
// the parent's stub, with set_tid), top-down, with sessions and groups set before the
// children that inherit them are forked; zombies recreated dead.
//
//   root: clone3 from us (stub) ─► park ─► setsid/setpgid ─► fork its children ─► each:
//         setsid/setpgid ─► fork its children ... ─► a zombie: exit with its status
import { CriuError } from '../errors.js';
import type { PstreeEntry } from '../images/pstree.js';
import { hasCode, native } from '../kernel/native.js';
import { describePid } from '../kernel/procfs.js';
import { waitStop } from '../kernel/ptrace.js';
import { PTRACE_EVENT, PTRACE_O, SIG, SYS } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import { putBytes } from './remote-args.js';
import type { Stub } from './stub.js';

const CLONE_ARGS_SIZE = 88;

/** Forks `pid` out of the parent stub (a plain fork: exit signal SIGCHLD, its own everything). */
export function forkChild(parent: Stub, pid: number): number {
  native.ptraceSetOptions(parent.pid, PTRACE_O.EXITKILL | PTRACE_O.TRACEFORK);
  try {
    const ids = Buffer.alloc(4);
    ids.writeInt32LE(pid, 0);
    const setTid = putBytes(parent, ids, 256);
    const args = Buffer.alloc(CLONE_ARGS_SIZE);
    args.writeBigUInt64LE(BigInt(SIG.CHLD), 32); // exit_signal
    args.writeBigUInt64LE(BigInt(setTid), 64); // set_tid
    args.writeBigUInt64LE(1n, 72); // set_tid_size
    let got: number;
    try {
      got = parent.remote.call(SYS.clone3, `clone3(set_tid ${pid})`, putBytes(parent, args, 0), CLONE_ARGS_SIZE);
    } catch (e) {
      if (hasCode(e, 'EEXIST')) throw new CriuError('EEXIST', `PID ${pid} is taken by ${describePid(pid) ?? 'another process'}`, { cause: e });
      throw e;
    }
    if (got !== pid) throw new CriuError('EINVAL', `clone3 made process ${got}, not ${pid}`);
    // Auto-attached through TRACEFORK (and killed with us, EXITKILL is inherited).
    const s = waitStop(pid);
    if (s.event !== PTRACE_EVENT.STOP) throw new CriuError('EPROTO', `process ${pid}: unexpected first stop (signal ${s.signal}, event ${s.event})`);
    return pid;
  } finally {
    native.ptraceSetOptions(parent.pid, PTRACE_O.EXITKILL);
  }
}

/**
 * Session and group, before any child is forked (children inherit them): a session leader
 * calls setsid(); a group leader setpgid(0, 0); a member joins its group's leader, which was
 * created before it if it is in the tree. Groups and sessions of processes outside the tree
 * (the shell's) cannot be joined: the process stays in the restorer's, as with --shell-job.
 */
export function sessionAndGroup(stub: Stub, p: PstreeEntry, created: Set<number>, log: Logger): void {
  const r = stub.remote;
  if (p.sid === p.pid) r.call(SYS.setsid, 'setsid');
  if (p.pgid === p.pid) {
    if (p.sid !== p.pid) r.call(SYS.setpgid, 'setpgid', 0, 0);
  } else if (created.has(p.pgid)) {
    r.call(SYS.setpgid, `setpgid(${p.pgid})`, 0, p.pgid);
  } else if (p.sid !== p.pid) {
    log.debug(`pid ${p.pid} was in group ${p.pgid} of a process outside the tree: it stays in the restorer's`);
  }
}

/** Makes a freshly forked stub die the way the zombie did; its parent will collect it. */
export function makeZombie(stub: Stub, status: number): void {
  const r = stub.remote;
  const signal = status & 0x7f;
  if (signal === 0) {
    try {
      r.call(SYS.exit_group, 'exit_group', (status >> 8) & 0xff);
    } catch (e) {
      if (!hasCode(e, 'ESRCH')) throw e; // it exited: that is the point
    }
    return;
  }
  // Killed by a signal: that signal, default action, pending when we let it go.
  r.call(SYS.rt_sigaction, 'rt_sigaction', signal, putBytes(stub, Buffer.alloc(32)), 0, 8);
  r.call(SYS.kill, 'kill', stub.pid, signal);
  native.ptraceDetach(stub.pid, 0);
}

/** Kills every process created so far and collects them: nothing half-alive remains. */
export function destroyAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      native.kill(pid, SIG.KILL);
    } catch {
      /* gone */
    }
  }
  for (const pid of [...pids].reverse()) {
    try {
      native.waitpid(pid, 0);
    } catch {
      /* not ours to wait for */
    }
  }
}
