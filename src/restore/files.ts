// The fd table: every saved fd reopened at its number with its flags and offset. A deleted
// file is recreated from its ghost copy, opened, and unlinked again.
import { chmodSync, existsSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CriuError } from '../errors.js';
import { ImageError } from '../images/errors.js';
import type { FdEntry, Files } from '../images/files.js';
import { readImageFile } from '../images/io.js';
import { zstd } from '../images/zstd.js';
import { F, O, SYS } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import { openInStub } from './mm.js';
import type { Stub } from './stub.js';

const SEEK_SET = 0;
const FD_CLOEXEC = 1;
/** Flags that make sense only at creation: never replayed on reopen. */
const CREATE_ONLY = O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY;

function ghostContent(dir: string, e: FdEntry): Buffer {
  const name = e.deleted!.ghost;
  const comp = readImageFile(dir, name);
  let size: number | null;
  try {
    size = zstd.getFrameContentSize(comp);
  } catch (err) {
    throw new ImageError(join(dir, name), `not a zstd frame (${(err as Error).message})`, { cause: err });
  }
  if (size !== e.deleted!.size) throw new ImageError(join(dir, name), `holds ${size} bytes, the fd table says ${e.deleted!.size}`);
  const out = Buffer.alloc(size);
  try {
    zstd.decompress(out, comp);
  } catch (err) {
    throw new ImageError(join(dir, name), `damaged (${(err as Error).message})`, { cause: err });
  }
  return out;
}

/** A free name next to where the deleted file was (the name itself is gone again at once). */
function ghostPath(path: string): string {
  const dir = existsSync(dirname(path)) ? dirname(path) : '/tmp';
  for (let i = 0; ; i++) {
    const p = join(dir, `.criu-ts-ghost-${process.pid}-${i}`);
    if (!existsSync(p)) return p;
  }
}

function openEntry(stub: Stub, dir: string, e: FdEntry): number {
  const flags = e.flags & ~CREATE_ONLY;
  if (e.kind === 'reg' && e.deleted) {
    const path = ghostPath(e.path!);
    writeFileSync(path, ghostContent(dir, e), { mode: 0o600, flag: 'wx' });
    try {
      chmodSync(path, e.deleted.mode);
      return openInStub(stub, path, flags);
    } finally {
      unlinkSync(path);
    }
  }
  try {
    return openInStub(stub, e.path!, flags);
  } catch (err) {
    throw new CriuError((err as { code?: string }).code ?? 'EIO', `fd ${e.fd}: cannot reopen ${e.path}: ${(err as Error).message}`, { cause: err });
  }
}

export function restoreFiles(stub: Stub, files: Files, dir: string, shellJob: boolean, log: Logger): void {
  const r = stub.remote;
  const inherited = files.fds.filter((e) => e.kind === 'inherited');
  if (inherited.length && !shellJob) {
    throw new CriuError('EINVAL', `fds ${inherited.map((e) => e.fd).join(', ')} were dumped with --shell-job; restore with --shell-job too`);
  }
  // The stub holds the restorer's fds 0-2; keep those the image inherits, close the rest.
  const keep = new Set(inherited.map((e) => e.fd));
  for (const fd of readdirSync(`/proc/${stub.pid}/fd`).map(Number)) {
    if (!keep.has(fd)) r.call(SYS.close, `close(${fd})`, fd);
  }
  for (const e of [...files.fds].sort((a, b) => a.fd - b.fd)) {
    if (e.kind === 'inherited') {
      log.debug(`fd ${e.fd}: inherited from the restoring process (--shell-job)`);
      continue;
    }
    const tmp = openEntry(stub, dir, e);
    if (tmp !== e.fd) {
      r.call(SYS.dup2, `dup2(${e.fd})`, tmp, e.fd);
      r.call(SYS.close, 'close', tmp);
    }
    if (e.cloexec) r.call(SYS.fcntl, 'fcntl(F_SETFD)', e.fd, F.SETFD, FD_CLOEXEC);
    if (e.pos && e.kind !== 'chr') r.call(SYS.lseek, `lseek(${e.fd})`, e.fd, e.pos, SEEK_SET);
  }
}
