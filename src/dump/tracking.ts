// Where write tracking lives between pre-dump passes, and how a pass finds it again.
//
// Choice: a tiny tracker process of ours (native/tracker/tracker.c) holds the uffd, not the
// target. The target then has no fd of ours that it could close, inherit to a child, see in
// /proc/self/fd or lose in an exec's close-on-exec; the tracker dies with the target (it
// polls a pidfd of it) or when the chain ends, and its death closes the uffd, which
// unregisters every range and clears the write protection in the target.
// The cost: one small process per tracked target, and a PID to check before we trust it.
//
//   pass 1:  inject userfaultfd ─► take it (pidfd_getfd) ─► UFFDIO_API(WP_ASYNC|WP_UNPOPULATED)
//            ─► REGISTER(MODE_WP) each private VMA ─► spawn tracker with the uffd as fd 3
//            ─► inventory.tracking = {tracker pid + start time, target start time}
//   pass N:  inventory.tracking ─► tracker alive, same start time, fd 3 a userfaultfd?
//            ─► pidfd_getfd(tracker, 3) ─► scan / register / copy ─► close our copy
//   end:     SIGTERM the tracker (and close our copy): the kernel unregisters everything.
import { spawn } from 'node:child_process';
import { closeSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CriuError } from '../errors.js';
import type { Inventory } from '../images/inventory.js';
import { hasCode, native, packageRoot } from '../kernel/native.js';
import type { Remote } from '../kernel/remote.js';
import { UFFD } from '../kernel/syscalls.js';
import { takeUffdFrom } from '../kernel/uffd.js';

export type TrackingInfo = NonNullable<Inventory['tracking']>[number];

export const trackerPath = () => join(packageRoot(), 'build', 'Release', 'tracker');
const TRACKER_FD = 3;

/** Start time of a process in clock ticks since boot (/proc/PID/stat field 22): with the pid, an identity. */
export function startTime(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

/** A fresh userfaultfd in the stopped target, with the WP_ASYNC API on, held by us. */
export function createTrackingUffd(remote: Remote, pid: number): { fd: number; userModeOnly: boolean } {
  const u = takeUffdFrom(remote, pid);
  try {
    native.uffdApi(u.fd, UFFD.FEATURE_WP_ASYNC | UFFD.FEATURE_WP_UNPOPULATED);
  } catch (e) {
    closeSync(u.fd);
    throw new CriuError('ENOTSUP', `userfaultfd write tracking (WP_ASYNC) is not available: ${(e as Error).message}`, { cause: e });
  }
  return u;
}

export type RegisterResult = 'ok' | 'busy' | 'refused';

/** REGISTER(MODE_WP) of one VMA: 'busy' if the target uses userfaultfd there itself. */
export function registerWp(fd: number, start: number, end: number): RegisterResult {
  try {
    native.uffdRegister(fd, start, end - start, UFFD.REGISTER_MODE_WP);
    return 'ok';
  } catch (e) {
    if (hasCode(e, 'EBUSY')) return 'busy';
    if (hasCode(e, 'EINVAL', 'EPERM')) return 'refused';
    throw e;
  }
}

/** Hands the uffd to a new tracker process; returns what a later pass needs to find it. */
export function spawnTracker(uffd: number, targetPid: number, userModeOnly: boolean): TrackingInfo {
  const pidfd = native.pidfdOpen(targetPid);
  try {
    const child = spawn(trackerPath(), [String(targetPid)], { stdio: ['ignore', 'ignore', 'ignore', uffd, pidfd], detached: true });
    child.unref();
    if (!child.pid) throw new CriuError('EAGAIN', 'could not start the tracker process');
    return { targetPid, trackerPid: child.pid, trackerStartTime: startTime(child.pid), trackerFd: TRACKER_FD, targetStartTime: startTime(targetPid), userModeOnly };
  } finally {
    closeSync(pidfd);
  }
}

/** Takes the chain's uffd from its tracker, or says why tracking was lost. */
export function acquireTracking(info: TrackingInfo, targetPid: number): { fd: number } | { lost: string } {
  try {
    if (startTime(targetPid) !== info.targetStartTime) return { lost: `pid ${targetPid} is not the process the chain started with` };
  } catch {
    return { lost: `process ${targetPid} is gone` };
  }
  const t = info.trackerPid;
  try {
    if (startTime(t) !== info.trackerStartTime || readlinkSync(`/proc/${t}/exe`) !== trackerPath()) return { lost: `tracker ${t} is gone` };
    if (readlinkSync(`/proc/${t}/fd/${info.trackerFd}`) !== 'anon_inode:[userfaultfd]') return { lost: `tracker ${t} no longer holds the userfaultfd` };
  } catch {
    return { lost: `tracker ${t} is gone` };
  }
  const pidfd = native.pidfdOpen(t);
  try {
    return { fd: native.pidfdGetfd(pidfd, info.trackerFd) };
  } catch (e) {
    return { lost: `cannot take the userfaultfd from tracker ${t}: ${(e as Error).message}` };
  } finally {
    closeSync(pidfd);
  }
}

/**
 * Ends tracking: the tracker exits (SIGTERM through a pidfd, so a reused PID is never hit),
 * and with our copy closed too the kernel drops the registration and the write protection.
 */
export function endTracking(info: TrackingInfo | undefined, ourFd?: number): void {
  if (ourFd !== undefined) closeSync(ourFd);
  if (!info) return;
  let pidfd = -1;
  try {
    if (startTime(info.trackerPid) !== info.trackerStartTime) return;
    pidfd = native.pidfdOpen(info.trackerPid);
    native.pidfdSendSignal(pidfd, 15);
  } catch {
    /* already gone */
  } finally {
    if (pidfd >= 0) closeSync(pidfd);
  }
}

/** Ends every tracker of a chain and waits until they are gone. */
export async function endAllTracking(infos: readonly TrackingInfo[] | undefined): Promise<boolean> {
  for (const i of infos ?? []) endTracking(i);
  let all = true;
  for (const i of infos ?? []) all = (await waitTrackerGone(i)) && all;
  return all;
}

/** Waits (briefly) until the tracker has exited, so its uffd is really released. */
export async function waitTrackerGone(info: TrackingInfo | undefined, timeoutMs = 2000): Promise<boolean> {
  if (!info) return true;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (startTime(info.trackerPid) !== info.trackerStartTime) return true;
      // A zombie holds no fds any more: its uffd is closed.
      const state = readFileSync(`/proc/${info.trackerPid}/stat`, 'utf8');
      if (state.slice(state.lastIndexOf(')') + 2).startsWith('Z')) return true;
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}
