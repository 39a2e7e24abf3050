// inotify: a new instance, and each watch added again by path so that it gets its old watch
// descriptor. wds are handed out in increasing order (cyclically): a watch that comes out
// below its wd is removed and added again until it reaches it (as CRIU does). Each removal
// queues an IN_IGNORED event, which the process must not see: such events are drained.
import { readSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import type { FdEntry } from '../../images/files.js';
import { hasCode } from '../../kernel/native.js';
import { O, SYS } from '../../kernel/syscalls.js';
import { putString } from '../remote-args.js';
import type { FdRestoreContext } from './context.js';

/** Flags that steer inotify_add_watch itself, never part of a watch's mask. */
const IN_MASK_ADD = 0x20000000;
const IN_MASK_CREATE = 0x10000000;
const MAX_SKIPS = 1 << 16;

export function createInotify(ctx: FdRestoreContext, e: FdEntry): number {
  const { stub } = ctx;
  const r = stub.remote;
  const fd = r.call(SYS.inotify_init1, 'inotify_init1', O.NONBLOCK);
  let skipped = 0;
  for (const w of e.inotify!.watches) {
    const mask = w.mask & ~(IN_MASK_ADD | IN_MASK_CREATE);
    for (;;) {
      const path = putString(stub, w.path);
      let wd: number;
      try {
        wd = r.call(SYS.inotify_add_watch, `inotify_add_watch(${w.path})`, fd, path, mask);
      } catch (err) {
        throw new CriuError((err as { code?: string }).code ?? 'EIO', `fd ${e.fd}: cannot watch ${w.path} again (watch ${w.wd}): ${(err as Error).message}`, { cause: err });
      }
      if (wd === w.wd) break;
      if (wd > w.wd || ++skipped > MAX_SKIPS) throw new CriuError('EINVAL', `fd ${e.fd}: watch ${w.wd} on ${w.path} came back as ${wd}`);
      r.call(SYS.inotify_rm_watch, 'inotify_rm_watch', fd, wd);
    }
  }
  if (skipped) drain(ctx, fd);
  return fd;
}

function drain(ctx: FdRestoreContext, fd: number): void {
  ctx.withOurs(fd, (ours) => {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      try {
        if (readSync(ours, buf) <= 0) return;
      } catch (err) {
        if (hasCode(err, 'EAGAIN')) return;
        throw err;
      }
    }
  });
}
