// The fd table (files-PID.json). Regular files are saved by path and offset; a deleted
// one also with its content (ghost file). Kinds not supported yet stop the dump *before*
// anything is harmed, naming the fd, its kind and the pid.
import { closeSync, fstatSync, openSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { CriuError } from '../errors.js';
import { ghostFile, type FdEntry, type Files } from '../images/files.js';
import { writeImageFile } from '../images/io.js';
import { O } from '../kernel/syscalls.js';
import { zstd } from '../images/zstd.js';

const DELETED = ' (deleted)';
/** Character devices that are the same everywhere and reopen by path. */
const PLAIN_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom']);

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
  const m = /^(\w+):\[/.exec(target) ?? /^anon_inode:\[?([\w-]+)/.exec(target);
  return m ? m[1]! : target;
}

export interface FilesOptions {
  shellJob: boolean;
  /** Where ghost files go. */
  dir: string;
}

export function collectFiles(pid: number, o: FilesOptions): { files: Files; ghostBytes: number } {
  const fds: FdEntry[] = [];
  let ghostBytes = 0;
  const numbers = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
  for (const fd of numbers) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (cannot happen while frozen, but harmless)
    }
    const info = readFdinfo(pid, fd);
    const cloexec = (info.flags & O.CLOEXEC) !== 0;
    const flags = info.flags & ~O.CLOEXEC;
    const base = { fd, flags, cloexec, target };
    if (o.shellJob && fd <= 2 && !target.startsWith('/')) {
      fds.push({ ...base, kind: 'inherited' });
      continue;
    }
    if (!target.startsWith('/')) {
      throw new CriuError('ENOTSUP', `fd ${fd} of pid ${pid} is a ${kindName(target)} (${target}): not supported yet${fd <= 2 ? ' (use --shell-job for std fds)' : ''}`);
    }
    const st = statSync(`/proc/${pid}/fd/${fd}`);
    if (st.isCharacterDevice()) {
      if (PLAIN_DEVICES.has(target)) {
        fds.push({ ...base, kind: 'chr', path: target, pos: info.pos });
        continue;
      }
      if (o.shellJob && fd <= 2) {
        fds.push({ ...base, kind: 'inherited' });
        continue;
      }
      throw new CriuError('ENOTSUP', `fd ${fd} of pid ${pid} is a terminal or device (${target}): not supported yet${fd <= 2 ? ' (use --shell-job for std fds)' : ''}`);
    }
    if (st.isDirectory()) {
      fds.push({ ...base, kind: 'dir', path: target, pos: 0 });
      continue;
    }
    if (!st.isFile()) throw new CriuError('ENOTSUP', `fd ${fd} of pid ${pid} (${target}) is not a regular file: not supported yet`);
    if (target.endsWith(DELETED) && st.nlink === 0) {
      // The file is gone: keep its content; restore recreates it, opens it and unlinks it.
      const name = ghostFile(pid, fd);
      const fdr = openSync(`/proc/${pid}/fd/${fd}`, 'r');
      let content: Buffer;
      try {
        content = readFileSync(fdr);
        if (content.length !== fstatSync(fdr).size) throw new CriuError('EIO', `fd ${fd} of pid ${pid}: short read of deleted file`);
      } finally {
        closeSync(fdr);
      }
      writeImageFile(o.dir, name, compressWhole(content));
      ghostBytes += content.length;
      fds.push({
        ...base,
        kind: 'reg',
        path: target.slice(0, -DELETED.length),
        pos: info.pos,
        deleted: { ghost: name, size: content.length, mode: st.mode & 0o7777 },
      });
      continue;
    }
    fds.push({ ...base, kind: 'reg', path: target, pos: info.pos });
  }
  return { files: { pid, fds }, ghostBytes };
}

function compressWhole(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(zstd.compressBound(data.length));
  return out.subarray(0, zstd.compress(out, data, 3));
}
