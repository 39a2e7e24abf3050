// Pipes (both ends recreated with pipe2, the data written back into the write end) and
// FIFOs (reopened by path; the data written back through a helper).
//
// A FIFO open for reading blocks until a writer comes, and one for writing until a reader
// does (or fails, non-blocking). So the helper opens the FIFO read-write first (which never
// waits on Linux), every saved fd then opens with its own mode at once, the data goes in
// through the helper, and the helper is closed.
import { lstatSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { O, SYS } from '../../kernel/syscalls.js';
import { openInStub } from '../mm.js';
import { twoFds, writeInStub, type FdRestoreContext } from './context.js';

const F_SETPIPE_SZ = 1031;
const F_DUPFD_CLOEXEC = 1030;
const CREATE_ONLY = O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY;

/** Both ends of each pipe, with the saved data written back into it. */
export function openPipes(ctx: FdRestoreContext, fds: FdEntry[]): void {
  const { stub, place } = ctx;
  const r = stub.remote;
  const byId = new Map<number, FdEntry[]>();
  for (const e of fds) if (e.kind === 'pipe' && e.dupOf === undefined && !place.temp.has(e.fd)) byId.set(e.pipe!.id, [...(byId.get(e.pipe!.id) ?? []), e]);
  for (const [id, ends] of byId) {
    const reader = ends.find((e) => (e.flags & O.ACCMODE) === O.RDONLY);
    const writer = ends.find((e) => (e.flags & O.ACCMODE) === O.WRONLY);
    const creator = ends[0]!.pipe!.creator;
    if (creator !== undefined && creator !== stub.pid) {
      // Made by an earlier process of the tree, which left us the ends it does not keep.
      for (const e of ends) place.temp.set(e.fd, place.park(ctx.tree!.takeKept(stub, id, e === reader ? 'r' : 'w')));
      continue;
    }
    if (creator === undefined && (!reader || !writer)) throw new CriuError('EINVAL', `pipe ${id}: the image does not hold both ends`);
    const [rr, ww] = twoFds(stub, (at) => r.call(SYS.pipe2, 'pipe2', at, 0));
    const rfd = place.park(rr);
    const wfd = place.park(ww);
    const saved = creator === undefined ? { size: reader!.pipe!.size, data: reader!.pipe!.data } : ctx.tree!.pipeData(id);
    if (saved.size > 0) r.call(SYS.fcntl, 'fcntl(F_SETPIPE_SZ)', wfd, F_SETPIPE_SZ, saved.size);
    if (saved.data) writeInStub(stub, wfd, Buffer.from(saved.data, 'base64'), `pipe ${id}`);
    for (const [e, end, fd] of [[reader, 'r', rfd], [writer, 'w', wfd]] as const) {
      if (e) {
        place.temp.set(e.fd, fd);
      } else {
        // An end this process does not hold: kept by us for the process of the tree that does.
        ctx.tree!.keep(id, end, ctx.withOurs(fd, (ours) => native.fcntl(ours, F_DUPFD_CLOEXEC, 0)));
        r.call(SYS.close, 'close', fd);
      }
    }
  }
}

/** Every fd of each FIFO reopened by path with its mode, and the FIFO's data put back. */
export function openFifos(ctx: FdRestoreContext, fds: FdEntry[]): void {
  const { stub, place } = ctx;
  const r = stub.remote;
  const byId = new Map<number, FdEntry[]>();
  for (const e of fds) if (e.kind === 'fifo' && e.dupOf === undefined && !place.temp.has(e.fd)) byId.set(e.fifo!.id, [...(byId.get(e.fifo!.id) ?? []), e]);
  for (const ends of byId.values()) {
    const path = ends[0]!.path!;
    let isFifo = false;
    try {
      isFifo = lstatSync(path).isFIFO();
    } catch {
      /* reported below */
    }
    if (!isFifo) throw new CriuError('ENOENT', `fd ${ends[0]!.fd}: FIFO ${path} is missing or is no longer a FIFO`);
    const helper = openInStub(stub, path, O.RDWR | O.NONBLOCK);
    try {
      for (const e of ends) {
        // Non-blocking for now: the saved flags are set once the fd is at its number.
        place.temp.set(e.fd, place.park(openInStub(stub, path, (e.flags & ~CREATE_ONLY) | O.NONBLOCK)));
      }
      const saved = ends.find((e) => e.fifo!.data !== undefined || e.fifo!.size > 0);
      if (saved?.fifo!.size) r.call(SYS.fcntl, 'fcntl(F_SETPIPE_SZ)', helper, F_SETPIPE_SZ, saved.fifo!.size);
      if (saved?.fifo!.data) writeInStub(stub, helper, Buffer.from(saved.fifo!.data, 'base64'), `FIFO ${path}`);
    } finally {
      r.call(SYS.close, 'close', helper);
    }
  }
}
