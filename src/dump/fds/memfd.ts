// memfd: "/memfd:NAME (deleted)" in /proc/PID/fd. Saved with its name, seals, mode and
// content (a ghost file); restored with memfd_create, the content written back, then sealed.
import { statSync } from 'node:fs';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import type { FdCollectContext } from './common.js';
import { saveGhost } from './ghost.js';

const F_GET_SEALS = 1034;
const PREFIX = '/memfd:';
const DELETED = ' (deleted)';

export function isMemfd(target: string): boolean {
  return target.startsWith(PREFIX) && target.endsWith(DELETED);
}

/** `seen`: memfd inodes whose content is saved already (by an earlier fd). */
export function collectMemfd(ctx: FdCollectContext, fd: number, target: string, seen: Set<number>): { state: NonNullable<FdEntry['memfd']>; bytes: number } {
  const seals = ctx.withFd(fd, (ours) => native.fcntl(ours, F_GET_SEALS));
  const st = statSync(`/proc/${ctx.pid}/fd/${fd}`);
  const state = { id: st.ino, name: target.slice(PREFIX.length, -DELETED.length), seals, mode: st.mode & 0o7777, size: st.size };
  if (seen.has(st.ino)) return { state, bytes: 0 };
  seen.add(st.ino);
  const g = saveGhost(ctx.pid, fd, ctx.dir);
  return { state: { ...state, size: g.size, ghost: g.name }, bytes: g.size };
}
