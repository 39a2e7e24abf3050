// inotify: fdinfo lists each watch by wd, inode, device, mask and file handle, not by path.
// The path comes from open_by_handle_at on the watched filesystem's mount, then the link of
// the fd it gives. Limits: a watched file that was deleted, or that is not reachable from
// any mount here, cannot be watched again (refused); events queued but unread are lost (a
// note says how many bytes).
import { closeSync, constants, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { SIOCINQ } from '../../kernel/sockets.js';
import { refused, type FdCollectContext } from './common.js';

const O_PATH = 0o10000000;
const WATCH = /^inotify wd:(\d+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:[0-9a-f]+(?: fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+))?/gm;

/** Mount points by "major:minor", the one whose root is the filesystem's root first. */
function mountsByDev(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const [dev, root, point] = [f[2]!, f[3]!, f[4]!.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))];
    if (!out.has(dev) || root === '/') out.set(dev, point);
  }
  return out;
}

export function collectInotify(ctx: FdCollectContext, fd: number, text: string): NonNullable<FdEntry['inotify']> {
  const what = 'an inotify instance';
  const mounts = mountsByDev();
  const mountFds = new Map<string, number>();
  const watches: NonNullable<FdEntry['inotify']>['watches'] = [];
  try {
    for (const m of text.matchAll(WATCH)) {
      const [wd, ino, sdev, mask] = [Number(m[1]), parseInt(m[2]!, 16), parseInt(m[3]!, 16), parseInt(m[4]!, 16)];
      if (!m[7]) throw refused(ctx.pid, fd, what, `watch ${wd} has no file handle in fdinfo (kernel without CONFIG_FHANDLE?)`);
      // The kernel's dev_t: major in the top 12 bits, minor in the low 20.
      const dev = `${sdev >>> 20}:${sdev & 0xfffff}`;
      const point = mounts.get(dev);
      if (point === undefined) throw refused(ctx.pid, fd, what, `watch ${wd} is on device ${dev}, which no mount here shows`);
      let mfd = mountFds.get(dev);
      if (mfd === undefined) mountFds.set(dev, (mfd = openSync(point, constants.O_RDONLY | constants.O_DIRECTORY))); // not O_PATH: open_by_handle_at refuses those
      let path: string;
      const handle = Buffer.from(m[7], 'hex');
      let hfd: number;
      try {
        hfd = native.openByHandleAt(mfd, parseInt(m[6]!, 16), handle, O_PATH);
      } catch (e) {
        throw refused(ctx.pid, fd, what, `the file of watch ${wd} (inode ${ino} on ${dev}) cannot be found again: ${(e as Error).message}`);
      }
      try {
        path = readlinkSync(`/proc/self/fd/${hfd}`);
        const st = statSync(`/proc/self/fd/${hfd}`);
        if (st.nlink === 0 || path.endsWith(' (deleted)')) throw refused(ctx.pid, fd, what, `watch ${wd} is on a deleted file (${path})`);
        if (st.ino !== ino) throw new CriuError('EIO', `inotify watch ${wd}: the file handle led to inode ${st.ino}, not ${ino}`);
      } finally {
        closeSync(hfd);
      }
      watches.push({ wd, mask, path, ino });
    }
  } finally {
    for (const f of mountFds.values()) closeSync(f);
  }
  if (watches.length !== (text.match(/^inotify wd:/gm) ?? []).length) throw new CriuError('ENOTSUP', `inotify at fd ${fd} of pid ${ctx.pid}: cannot read its fdinfo`);
  const queued = Buffer.alloc(4);
  ctx.withFd(fd, (ours) => native.ioctlBuffer(ours, SIOCINQ, queued));
  const queuedBytes = queued.readUInt32LE(0);
  if (queuedBytes) ctx.notes.push(`fd ${fd} (inotify): ${queuedBytes} bytes of unread events are not restored`);
  return { watches: watches.sort((a, b) => a.wd - b.wd), queuedBytes };
}
