// --inherit-fd fd[N]:KEY (CRIU's option): the fds whose saved target is KEY ("pipe:[1234]",
// "socket:[5678]", a path ...) get the restoring process's fd N instead of a new object. The
// restored process takes it itself, with pidfd_getfd on the restorer: it shares the open
// file description the restorer holds.
import { fstatSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import { SYS } from '../../kernel/syscalls.js';
import type { FdRestoreContext } from './context.js';

export interface InheritFd {
  /** The restorer's fd. */
  fd: number;
  /** The target it stands for, as the image shows it (criu-ts show). */
  key: string;
}

/** "fd[7]:pipe:[1234]" -> { fd: 7, key: 'pipe:[1234]' }. */
export function parseInheritFd(s: string): InheritFd {
  const m = /^fd\[(\d+)\]:(.+)$/.exec(s);
  if (!m) throw new CriuError('EINVAL', `--inherit-fd ${s}: expected fd[N]:KEY, e.g. fd[7]:pipe:[1234]`);
  const fd = Number(m[1]);
  try {
    fstatSync(fd);
  } catch {
    throw new CriuError('EBADF', `--inherit-fd ${s}: fd ${fd} is not open in this process`);
  }
  return { fd, key: m[2]! };
}

export function takeInherited(ctx: FdRestoreContext, restorerFd: number): number {
  const r = ctx.stub.remote;
  const pidfd = r.call(SYS.pidfd_open, 'pidfd_open', process.pid, 0);
  try {
    return ctx.place.park(r.call(SYS.pidfd_getfd, `pidfd_getfd(${restorerFd})`, pidfd, restorerFd, 0));
  } finally {
    r.call(SYS.close, 'close', pidfd);
  }
}
