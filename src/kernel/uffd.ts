// userfaultfd from the outside: create one inside a stopped target, take it out with
// pidfd_getfd, and drive it from here (API, REGISTER, COPY ... act on the target's mm).
import { closeSync } from 'node:fs';
import { native, hasCode } from './native.js';
import type { Remote } from './remote.js';
import { O, SYS, UFFD } from './syscalls.js';

export const UFFD_MSG_SIZE = 32;

/**
 * Injects userfaultfd() into the stopped thread `remote`, takes the fd out and closes the
 * target's copy. Falls back to UFFD_USER_MODE_ONLY where the plain call is refused (EPERM:
 * a target without CAP_SYS_PTRACE while vm.unprivileged_userfaultfd = 0).
 */
export function takeUffdFrom(remote: Remote, pid: number): { fd: number; userModeOnly: boolean } {
  let userModeOnly = false;
  let remoteFd: number;
  try {
    remoteFd = remote.call(SYS.userfaultfd, 'userfaultfd', O.CLOEXEC | O.NONBLOCK);
  } catch (e) {
    if (!hasCode(e, 'EPERM')) throw e;
    userModeOnly = true;
    remoteFd = remote.call(SYS.userfaultfd, 'userfaultfd', O.CLOEXEC | O.NONBLOCK | UFFD.USER_MODE_ONLY);
  }
  try {
    const pidfd = native.pidfdOpen(pid);
    try {
      return { fd: native.pidfdGetfd(pidfd, remoteFd), userModeOnly };
    } finally {
      closeSync(pidfd);
    }
  } finally {
    remote.call(SYS.close, 'close', remoteFd);
  }
}

export type UffdMsg =
  | { event: 'pagefault'; flags: bigint; address: number; tid: number }
  | { event: 'fork'; ufd: number }
  | { event: 'remap'; from: number; to: number; len: number }
  | { event: 'remove'; start: number; end: number }
  | { event: 'unmap'; start: number; end: number }
  | { event: 'unknown'; code: number };

export function parseMsg(buf: Buffer, index: number): UffdMsg {
  const o = index * UFFD_MSG_SIZE;
  const code = buf.readUInt8(o);
  const arg = o + 8;
  switch (code) {
    case UFFD.EVENT_PAGEFAULT:
      return {
        event: 'pagefault',
        flags: buf.readBigUInt64LE(arg),
        address: Number(buf.readBigUInt64LE(arg + 8)),
        tid: buf.readUInt32LE(arg + 16),
      };
    case UFFD.EVENT_FORK:
      return { event: 'fork', ufd: buf.readUInt32LE(arg) };
    case UFFD.EVENT_REMAP:
      return {
        event: 'remap',
        from: Number(buf.readBigUInt64LE(arg)),
        to: Number(buf.readBigUInt64LE(arg + 8)),
        len: Number(buf.readBigUInt64LE(arg + 16)),
      };
    case UFFD.EVENT_REMOVE:
    case UFFD.EVENT_UNMAP:
      return {
        event: code === UFFD.EVENT_REMOVE ? 'remove' : 'unmap',
        start: Number(buf.readBigUInt64LE(arg)),
        end: Number(buf.readBigUInt64LE(arg + 8)),
      };
    default:
      return { event: 'unknown', code };
  }
}

export interface CopyResult {
  copied: number;
  /** Pages skipped because they were already present (EEXIST), in bytes. */
  skipped: number;
}

/**
 * Runs a fill ioctl (COPY or ZEROPAGE) over [0, len), going on past pages that are already
 * there: a batch containing one fails with EAGAIN and a partial count, a batch starting
 * with one fails with EEXIST; we skip that page and go on.
 * EAGAIN with nothing done is different: the target's layout is changing (a fork, mremap,
 * madvise or munmap event waits for the server to read it). Nothing was filled and the page
 * is not there, so it is thrown: the caller reads its events and tries again.
 */
function fillSkipping(len: number, op: (done: number) => number): CopyResult {
  let done = 0;
  let skipped = 0;
  while (done < len) {
    try {
      done += op(done);
    } catch (e) {
      const partial = (e as { copied?: number }).copied ?? 0;
      if (hasCode(e, 'EAGAIN') && partial > 0) {
        done += partial;
      } else if (hasCode(e, 'EEXIST')) {
        done += 4096;
        skipped += 4096;
      } else {
        throw e;
      }
    }
  }
  return { copied: done - skipped, skipped };
}

/** UFFDIO_COPY of [dst, dst+len) from buf[off...]. */
export function copyAll(fd: number, dst: number, buf: Buffer, off: number, len: number, mode = 0n): CopyResult {
  return fillSkipping(len, (done) => native.uffdCopy(fd, dst + done, buf, off + done, len - done, mode));
}

/** UFFDIO_ZEROPAGE over [start, start+len). */
export function zeroAll(fd: number, start: number, len: number): CopyResult {
  return fillSkipping(len, (done) => native.uffdZeropage(fd, start + done, len - done, 0n));
}
