// The fd table (files-PID.json). Regular files are saved by path and offset; a deleted
// one also with its content (ghost file). fds that share one open file description are
// found with kcmp and restored as dups. A pipe whose two ends are both in the process is
// recreated with the data in its buffer (read with tee, so nothing is consumed). Kinds not
// supported yet stop the dump *before* anything is harmed, naming the fd, its kind and the pid.
import { closeSync, fstatSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { CriuError } from '../errors.js';
import { ghostFile, type FdEntry, type Files } from '../images/files.js';
import { writeImageFile } from '../images/io.js';
import { zstd } from '../images/zstd.js';
import { hasCode, native } from '../kernel/native.js';
import { O } from '../kernel/syscalls.js';

const DELETED = ' (deleted)';
/** Character devices that are the same everywhere and reopen by path. */
const PLAIN_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom']);
const KCMP_FILE = 0;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
const SPLICE_F_NONBLOCK = 2;

export interface FdInfo {
  pos: number;
  flags: number;
}

export function readFdinfo(pid: number, fd: number): FdInfo {
  const text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
  const get = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(text)?.[1];
  return { pos: Number(get('pos') ?? 0), flags: parseInt(get('flags') ?? '0', 8) };
}

function kindName(target: string): string {
  // anon_inode first: its kind is in the brackets (anon_inode:[userfaultfd] is a userfaultfd).
  const m = /^anon_inode:\[?([\w-]+)/.exec(target) ?? /^(\w+):\[/.exec(target);
  return m ? m[1]! : target;
}

export interface FilesOptions {
  shellJob: boolean;
  /** Where ghost files go. */
  dir: string;
}

interface RawFd {
  fd: number;
  target: string;
  info: FdInfo;
}

function unsupported(pid: number, fd: number, what: string): CriuError {
  return new CriuError('ENOTSUP', `fd ${fd} of pid ${pid} is ${what}: not supported yet${fd <= 2 ? ' (use --shell-job for std fds)' : ''}`);
}

/** The data sitting in a pipe, copied out with tee(2) so the pipe keeps it. */
function pipeContent(pid: number, fd: number): { size: number; data: Buffer } {
  const pidfd = native.pidfdOpen(pid);
  let ours = -1;
  let pair: [number, number] | undefined;
  try {
    ours = native.pidfdGetfd(pidfd, fd);
    const size = native.fcntl(ours, F_GETPIPE_SZ);
    pair = native.pipe2(O.CLOEXEC | O.NONBLOCK);
    native.fcntl(pair[1], F_SETPIPE_SZ, size);
    let n = 0;
    try {
      n = native.tee(ours, pair[1], size, SPLICE_F_NONBLOCK);
    } catch (e) {
      if (!hasCode(e, 'EAGAIN')) throw e; // EAGAIN: the pipe is empty
    }
    const data = Buffer.alloc(n);
    let got = 0;
    while (got < n) got += readSync(pair[0], data, got, n - got, null);
    return { size, data };
  } finally {
    if (pair) pair.forEach((f) => closeSync(f));
    if (ours >= 0) closeSync(ours);
    closeSync(pidfd);
  }
}

function ghost(pid: number, fd: number, dir: string): { name: string; content: Buffer } {
  const name = ghostFile(pid, fd);
  const fdr = openSync(`/proc/${pid}/fd/${fd}`, 'r');
  try {
    const content = readFileSync(fdr);
    if (content.length !== fstatSync(fdr).size) throw new CriuError('EIO', `fd ${fd} of pid ${pid}: short read of deleted file`);
    const out = Buffer.allocUnsafe(zstd.compressBound(content.length));
    writeImageFile(dir, name, out.subarray(0, zstd.compress(out, content, 3)));
    return { name, content };
  } finally {
    closeSync(fdr);
  }
}

export function collectFiles(pid: number, o: FilesOptions): { files: Files; ghostBytes: number } {
  const raw: RawFd[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b)) {
    try {
      raw.push({ fd, target: readlinkSync(`/proc/${pid}/fd/${fd}`), info: readFdinfo(pid, fd) });
    } catch {
      /* closed meanwhile: cannot happen while frozen, but harmless */
    }
  }
  // Which pipes have both ends here (only those can be recreated from the image alone).
  const pipeEnds = new Map<string, Set<number>>();
  for (const r of raw) {
    if (r.target.startsWith('pipe:[')) {
      const ends = pipeEnds.get(r.target) ?? new Set<number>();
      ends.add(r.info.flags & O.ACCMODE);
      pipeEnds.set(r.target, ends);
    }
  }
  const fds: FdEntry[] = [];
  let ghostBytes = 0;
  const dataTaken = new Set<string>();
  for (const r of raw) {
    const { fd, target, info } = r;
    const base = { fd, flags: info.flags & ~O.CLOEXEC, cloexec: (info.flags & O.CLOEXEC) !== 0, target };
    // A dup of an fd already seen: same target, and kcmp says one open file description.
    const twin = fds.find((e) => e.target === target && e.dupOf === undefined && native.kcmp(pid, pid, KCMP_FILE, e.fd, fd) === 0);
    if (twin) {
      // --shell-job std fds stay the restorer's own, each one, shared or not.
      fds.push(twin.kind === 'inherited' ? { ...base, kind: 'inherited' } : { ...base, kind: twin.kind, dupOf: twin.fd });
      continue;
    }
    if (o.shellJob && fd <= 2 && !target.startsWith('/') && !(target.startsWith('pipe:[') && pipeEnds.get(target)!.size === 2)) {
      fds.push({ ...base, kind: 'inherited' });
      continue;
    }
    if (target.startsWith('pipe:[')) {
      if (pipeEnds.get(target)!.size !== 2) throw unsupported(pid, fd, `a pipe (${target}) whose other end is outside the process`);
      const id = Number(/\d+/.exec(target)![0]);
      const isReader = (info.flags & O.ACCMODE) === O.RDONLY;
      if (isReader && !dataTaken.has(target)) {
        dataTaken.add(target);
        const { size, data } = pipeContent(pid, fd);
        fds.push({ ...base, kind: 'pipe', pipe: { id, size, ...(data.length ? { data: data.toString('base64') } : {}) } });
      } else {
        fds.push({ ...base, kind: 'pipe', pipe: { id, size: 0 } });
      }
      continue;
    }
    if (!target.startsWith('/')) throw unsupported(pid, fd, `a ${kindName(target)} (${target})`);
    const st = statSync(`/proc/${pid}/fd/${fd}`);
    if (st.isCharacterDevice()) {
      if (PLAIN_DEVICES.has(target)) fds.push({ ...base, kind: 'chr', path: target, pos: info.pos });
      else if (o.shellJob && fd <= 2) fds.push({ ...base, kind: 'inherited' });
      else throw unsupported(pid, fd, `a terminal or device (${target})`);
    } else if (st.isDirectory()) {
      fds.push({ ...base, kind: 'dir', path: target, pos: 0 });
    } else if (!st.isFile()) {
      throw unsupported(pid, fd, `not a regular file (${target})`);
    } else if (target.endsWith(DELETED) && st.nlink === 0) {
      // The file is gone: keep its content; restore recreates it, opens it and unlinks it.
      const g = ghost(pid, fd, o.dir);
      ghostBytes += g.content.length;
      fds.push({
        ...base,
        kind: 'reg',
        path: target.slice(0, -DELETED.length),
        pos: info.pos,
        deleted: { ghost: g.name, size: g.content.length, mode: st.mode & 0o7777 },
      });
    } else {
      fds.push({ ...base, kind: 'reg', path: target, pos: info.pos });
    }
  }
  return { files: { pid, fds }, ghostBytes };
}
