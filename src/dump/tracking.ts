// Where write tracking lives between pre-dump passes, and how a pass finds it again.
//
// Choice: a tiny tracker process of ours (native/tracker/tracker.c) holds the uffd, not the
// target. The target then has no fd of ours that it could close, inherit to a child, see in
// /proc/self/fd or lose in an exec's close-on-exec; the tracker dies with the target (it
// polls a pidfd of it) or when the chain ends, and its death closes the uffd, which
// unregisters every range and clears the write protection in the target.
// The cost: one small process per tracked target, and a PID to check before we trust it.
//
// The tracker also holds a record (fd 5, an unlinked file) of the id of the chain's last
// pass: the set whose scan last protected the written pages again. A pass continues only
// from that set. Otherwise the pages written before that later scan (a pass that came
// after the parent, or one that failed after its scan) are protected but saved in no set
// the new one descends from, and a continuation would miss them: tracking counts as lost,
// and the pass saves everything. Each pre-dump pass writes its own id there before its scan.
//
//   pass 1:  inject userfaultfd ─► take it (pidfd_getfd) ─► UFFDIO_API(WP_ASYNC|WP_UNPOPULATED)
//            ─► REGISTER(MODE_WP) each private VMA ─► spawn tracker with the uffd as fd 3
//            ─► inventory.tracking = {tracker pid + start time, target start time}
//   pass N:  inventory.tracking ─► tracker alive, same start time, fd 3 a userfaultfd, the
//            record names the parent? ─► pidfd_getfd(tracker, 3) ─► record = this set's id
//            ─► scan / register / copy ─► close our copy  (the final dump only checks the
//            record: its scan protects nothing)
//   end:     SIGTERM the tracker (and close our copy): the kernel unregisters everything.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, readlinkSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const RECORD_FD = 5;

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

/**
 * Hands the uffd to a new tracker process, with its record naming `setId` (the pass that
 * armed tracking); returns what a later pass needs to find it.
 */
export function spawnTracker(uffd: number, targetPid: number, userModeOnly: boolean, setId: string): TrackingInfo {
  // An unlinked file on tmpfs: it lives exactly as long as the tracker holds it.
  const path = join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `criu-ts-record-${targetPid}-${process.pid}-${Date.now()}`);
  const record = openSync(path, 'wx+', 0o600);
  try {
    unlinkSync(path);
    writeRecord(record, setId);
    const pidfd = native.pidfdOpen(targetPid);
    try {
      const child = spawn(trackerPath(), [String(targetPid)], { stdio: ['ignore', 'ignore', 'ignore', uffd, pidfd, record], detached: true });
      child.unref();
      if (!child.pid) throw new CriuError('EAGAIN', 'could not start the tracker process');
      return { targetPid, trackerPid: child.pid, trackerStartTime: startTime(child.pid), trackerFd: TRACKER_FD, recordFd: RECORD_FD, targetStartTime: startTime(targetPid), userModeOnly };
    } finally {
      closeSync(pidfd);
    }
  } finally {
    closeSync(record);
  }
}

/**
 * The last pass: its id, and for a final dump's catch-up pass (see catch-up.ts) where its set
 * is, so that a dump retried from that pass's parent can find it ("ID" or "ID\nDIR").
 */
export interface PassRecord {
  id: string;
  catchUpDir?: string;
}

function readRecord(fd: number): PassRecord {
  const buf = Buffer.alloc(8192);
  const [id, dir] = buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0)).split('\n');
  return dir ? { id: id!, catchUpDir: dir } : { id: id! };
}

function writeRecord(fd: number, setId: string, catchUpDir?: string): void {
  ftruncateSync(fd, 0);
  writeSync(fd, catchUpDir ? `${setId}\n${catchUpDir}` : setId, 0);
}

/** A copy of one of the tracker's fds (the caller closes it). */
function takeFrom(tracker: number, fd: number): number {
  const pidfd = native.pidfdOpen(tracker);
  try {
    return native.pidfdGetfd(pidfd, fd);
  } finally {
    closeSync(pidfd);
  }
}

/** The id of the chain's last pass, as its tracker records it (undefined: a chain without a record). */
export function lastPass(info: TrackingInfo): PassRecord | undefined {
  if (info.recordFd === undefined) return undefined;
  const fd = takeFrom(info.trackerPid, info.recordFd);
  try {
    return readRecord(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Records `setId` as the chain's last pass: call it before the pass's scan protects
 * anything. The record must still name `parentId`: a pass of the same chain that ran since
 * this one took the tracking (two at once) would otherwise lose its pages to the next.
 */
export function recordPass(info: TrackingInfo, parentId: string, setId: string, catchUpDir?: string): void {
  const fd = takeFrom(info.trackerPid, info.recordFd!);
  try {
    const last = readRecord(fd).id;
    if (last !== parentId) throw new CriuError('EBUSY', `another pass of the chain of ${info.targetPid} ran since its parent (the chain's last pass is now ${last}): run this one again from the newest set`);
    writeRecord(fd, setId, catchUpDir);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes the chain's uffd from its tracker, or says why tracking was lost; `parentId` is the
 * id of the set the pass continues from, which must be the chain's last pass.
 */
export function acquireTracking(info: TrackingInfo, targetPid: number, parentId: string): { fd: number } | { lost: string } {
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
  let last: string | undefined;
  try {
    last = lastPass(info)?.id;
  } catch (e) {
    return { lost: `cannot read the record of tracker ${t}: ${(e as Error).message}` };
  }
  if (last === undefined) return { lost: 'the chain was started by a criu-ts that kept no record of its last pass' };
  if (last !== parentId) return { lost: `the parent set is not the chain's last pass (pass ${last} protected the pages again after it, or failed)` };
  try {
    return { fd: takeFrom(t, info.trackerFd) };
  } catch (e) {
    return { lost: `cannot take the userfaultfd from tracker ${t}: ${(e as Error).message}` };
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
