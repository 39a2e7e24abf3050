// The fd table: every saved fd reopened at its number with its flags and offset; dups as
// dups of one open file description; pipes recreated with their buffered data; a deleted
// file recreated from its ghost copy, opened, and unlinked again.
//
// Numbers: each object is first opened wherever the kernel puts it and moved above every
// number the table uses; then each fd is dup'ed to its number and the temporaries closed.
// So no open can land on a number that a later fd needs.
import { chmodSync, existsSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CriuError } from '../errors.js';
import { ImageError } from '../images/errors.js';
import type { FdEntry, Files } from '../images/files.js';
import type { ImageSource } from '../images/source.js';
import { zstd } from '../images/zstd.js';
import { readRemote } from '../kernel/remote.js';
import { F, O, SYS } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import { openInStub } from './mm.js';
import { putBytes } from './remote-args.js';
import type { Stub } from './stub.js';

const SEEK_SET = 0;
const F_DUPFD = 0;
const F_SETPIPE_SZ = 1031;
/** Flags that make sense only at creation: never replayed on reopen. */
const CREATE_ONLY = O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY;
const RLIMIT_NOFILE = 7;
/** The status flags F_SETFL can change. */
const SETFL_MASK = O.APPEND | O.NONBLOCK | 0o20000 /* O_ASYNC */ | 0o40000 /* O_DIRECT */ | 0o1000000 /* O_NOATIME */;

function ghostContent(src: ImageSource, e: FdEntry): Buffer {
  const name = e.deleted!.ghost;
  const comp = src.readFile(name);
  let size: number | null;
  try {
    size = zstd.getFrameContentSize(comp);
  } catch (err) {
    throw new ImageError(src.path(name), `not a zstd frame (${(err as Error).message})`, { cause: err });
  }
  if (size !== e.deleted!.size) throw new ImageError(src.path(name), `holds ${size} bytes, the fd table says ${e.deleted!.size}`);
  const out = Buffer.alloc(size);
  try {
    zstd.decompress(out, comp);
  } catch (err) {
    throw new ImageError(src.path(name), `damaged (${(err as Error).message})`, { cause: err });
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

class FdPlacer {
  /** Temporary fd (above every final number) of each saved fd that owns an object. */
  readonly temp = new Map<number, number>();
  constructor(
    private readonly stub: Stub,
    private readonly base: number,
  ) {}

  /** Moves a freshly opened fd above the table's numbers. */
  park(fd: number): number {
    const high = this.stub.remote.call(SYS.fcntl, 'fcntl(F_DUPFD)', fd, F_DUPFD, this.base);
    this.stub.remote.call(SYS.close, 'close', fd);
    return high;
  }
}

function openFile(stub: Stub, src: ImageSource, e: FdEntry): number {
  const flags = e.flags & ~CREATE_ONLY;
  if (e.kind === 'reg' && e.deleted) {
    const path = ghostPath(e.path!);
    writeFileSync(path, ghostContent(src, e), { mode: 0o600, flag: 'wx' });
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

/** Both ends of each pipe, with the saved data written back into it. */
function openPipes(stub: Stub, fds: FdEntry[], place: FdPlacer): void {
  const r = stub.remote;
  const byId = new Map<number, FdEntry[]>();
  for (const e of fds) if (e.kind === 'pipe' && e.dupOf === undefined) byId.set(e.pipe!.id, [...(byId.get(e.pipe!.id) ?? []), e]);
  for (const [id, ends] of byId) {
    const reader = ends.find((e) => (e.flags & O.ACCMODE) === O.RDONLY);
    const writer = ends.find((e) => (e.flags & O.ACCMODE) === O.WRONLY);
    if (!reader || !writer) throw new CriuError('EINVAL', `pipe ${id}: the image does not hold both ends`);
    const pair = putBytes(stub, Buffer.alloc(8));
    r.call(SYS.pipe2, 'pipe2', pair, 0);
    const made = readRemote(stub.pid, pair, 8);
    const rfd = place.park(made.readInt32LE(0));
    const wfd = place.park(made.readInt32LE(4));
    if (reader.pipe!.size > 0) r.call(SYS.fcntl, 'fcntl(F_SETPIPE_SZ)', wfd, F_SETPIPE_SZ, reader.pipe!.size);
    const data = reader.pipe!.data ? Buffer.from(reader.pipe!.data, 'base64') : Buffer.alloc(0);
    for (let off = 0; off < data.length; ) {
      const chunk = data.subarray(off, off + Math.min(data.length - off, stub.scratchLen));
      off += r.call(SYS.write, 'write(pipe)', wfd, putBytes(stub, chunk), chunk.length);
    }
    place.temp.set(reader.fd, rfd);
    place.temp.set(writer.fd, wfd);
  }
}

export function restoreFiles(stub: Stub, files: Files, src: ImageSource, shellJob: boolean, log: Logger): void {
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
  const maxFd = Math.max(2, ...files.fds.map((e) => e.fd));
  roomForFds(stub, 2 * maxFd + 64);
  const place = new FdPlacer(stub, maxFd + 1);
  openPipes(stub, files.fds, place);
  for (const e of files.fds) {
    if (e.kind === 'inherited' || e.kind === 'pipe' || e.dupOf !== undefined) continue;
    place.temp.set(e.fd, place.park(openFile(stub, src, e)));
    if (e.pos && e.kind !== 'chr') r.call(SYS.lseek, `lseek(${e.fd})`, place.temp.get(e.fd)!, e.pos, SEEK_SET);
  }
  for (const e of files.fds) {
    if (e.kind === 'inherited') {
      // The description is the restorer's, and Node makes its stdio non-blocking: give it
      // back the flags the process had (a blocking read must not turn into EAGAIN).
      log.debug(`fd ${e.fd}: inherited from the restoring process (--shell-job)`);
      if (existsSync(`/proc/${stub.pid}/fd/${e.fd}`)) r.call(SYS.fcntl, `fcntl(F_SETFL ${e.fd})`, e.fd, F.SETFL, e.flags & SETFL_MASK);
      continue;
    }
    const from = place.temp.get(e.dupOf ?? e.fd);
    if (from === undefined) throw new CriuError('EINVAL', `fd ${e.fd}: a dup of fd ${e.dupOf}, which the image does not hold`);
    r.call(SYS.dup3, `dup3(${e.fd})`, from, e.fd, e.cloexec ? O.CLOEXEC : 0);
    if (e.kind === 'pipe' && e.dupOf === undefined) r.call(SYS.fcntl, 'fcntl(F_SETFL)', e.fd, F.SETFL, e.flags);
  }
  for (const t of place.temp.values()) r.call(SYS.close, 'close', t);
}

/**
 * Room for the temporaries above the highest number: the soft RLIMIT_NOFILE goes up to the
 * hard one (never the hard one itself, which we could not raise again without
 * CAP_SYS_RESOURCE). The saved rlimits are set after the fds.
 */
function roomForFds(stub: Stub, need: number): void {
  const lim = putBytes(stub, Buffer.alloc(16));
  stub.remote.call(SYS.prlimit64, 'prlimit64(RLIMIT_NOFILE)', 0, RLIMIT_NOFILE, 0, lim);
  const cur = readRemote(stub.pid, lim, 16);
  const hard = cur.readBigUInt64LE(8);
  if (hard < BigInt(need)) throw new CriuError('EMFILE', `restoring fds up to ${need / 2} needs RLIMIT_NOFILE above ${need}; the hard limit here is ${hard}`);
  cur.writeBigUInt64LE(hard, 0);
  stub.remote.call(SYS.prlimit64, 'prlimit64(RLIMIT_NOFILE)', 0, RLIMIT_NOFILE, putBytes(stub, cur), 0);
}
