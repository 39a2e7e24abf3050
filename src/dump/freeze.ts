// Stopping every thread of a process and letting them go again.
//
// Threads can be created while we seize the others, so we list /proc/PID/task again until
// a pass finds nothing new. Every seized thread sits in a PTRACE_EVENT_STOP.
import { hasCode } from '../kernel/native.js';
import { detach, seizeAndStop } from '../kernel/ptrace.js';
import { eachTask, readStatus } from '../kernel/procfs.js';
import { CriuError } from '../errors.js';
import type { Logger } from '../log.js';

export interface Frozen {
  pid: number;
  /** Seized thread ids, leader first. */
  tids: number[];
  /** The signal of a group stop the process was already in, or 0. */
  stoppedBy: number;
}

export function freezeProcess(pid: number, log: Logger): Frozen {
  const seized: number[] = [];
  let stoppedBy = 0;
  try {
    eachTask(pid, 'freeze it', (tid) => {
      try {
        const info = seizeAndStop(tid, 0);
        if (info.groupStopped) stoppedBy = info.stopSignal;
        seized.push(tid);
      } catch (e) {
        // A thread that exited between the listing and the seize is simply gone.
        if (hasCode(e, 'ESRCH') && tid !== pid) return;
        if (hasCode(e, 'EPERM')) throw new CriuError('EPERM', `cannot trace ${tid}: permission denied (already traced, or not root?)`, { cause: e });
        throw e;
      }
    });
    if (!seized.includes(pid)) throw new CriuError('ESRCH', `process ${pid}: its leader thread is gone`);
    for (const t of seized) refuseSeccomp(pid, t);
    const tids = [pid, ...seized.filter((t) => t !== pid)];
    log.debug(`froze ${pid}: threads ${tids.join(' ')}`);
    return { pid, tids, stoppedBy };
  } catch (e) {
    for (const t of seized) detach(t);
    throw e;
  }
}

/**
 * Whatever of ours runs in a process (the collection's syscalls, the tracking's injection)
 * passes its seccomp filter, which may kill it for a call it never makes itself; and a
 * restore could not give the filter back (not supported yet). So a thread under seccomp
 * stops the dump or pre-dump before anything runs in it. Checked with every thread stopped:
 * none can add a filter any more (a thread that has just exited has none to check).
 */
function refuseSeccomp(pid: number, tid: number): void {
  let mode = 0;
  try {
    mode = Number(readStatus(pid, tid).get('Seccomp') ?? 0);
  } catch {
    return;
  }
  if (mode) throw new CriuError('ENOTSUP', `process ${pid}: thread ${tid} runs under seccomp (${mode === 1 ? 'strict mode' : 'a filter'}), which criu-ts cannot save yet`);
}

export function thaw(f: Frozen): void {
  for (const t of f.tids) detach(t);
}
