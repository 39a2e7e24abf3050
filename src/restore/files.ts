// The fd table: every saved fd back at its number with its flags, offset and state; dups as
// dups of one open file description. Each kind's objects are made by its module in
// src/restore/fds (see fds/context.ts for how numbers are kept free):
//
//   --inherit-fd ─► pipes ─► FIFOs ─► sockets ─► files, devices, eventfd, timerfd, signalfd,
//   inotify, memfd, epoll ─► every fd dup3'ed to its number, status flags set ─► epoll items
//   registered (by final numbers) ─► temporaries closed
import { chmodSync, existsSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CriuError } from '../errors.js';
import type { FdEntry, Files } from '../images/files.js';
import type { ImageSource } from '../images/source.js';
import { readRemote } from '../kernel/remote.js';
import { F, O, SYS } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import { createEpoll, createEventfd, createSignalfd, createTimerfd, registerEpolls } from './fds/anon.js';
import { FdPlacer, StubFds, type FdRestoreContext } from './fds/context.js';
import { ghostContent } from './fds/ghost.js';
import { takeInherited, type InheritFd } from './fds/inherit.js';
import type { TreeFds } from './fds/tree.js';
import { createInotify } from './fds/inotify.js';
import { createMemfd } from './fds/memfd.js';
import { openFifos, openPipes } from './fds/pipes.js';
import { restoreSockets } from './fds/sockets.js';
import { openInStub } from './mm.js';
import { putBytes } from './remote-args.js';
import type { Stub } from './stub.js';

export type { InheritFd } from './fds/inherit.js';

const SEEK_SET = 0;
/** Flags that make sense only at creation: never replayed on reopen. */
const CREATE_ONLY = O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY;
const RLIMIT_NOFILE = 7;
/** The status flags F_SETFL can change. */
const SETFL_MASK = O.APPEND | O.NONBLOCK | 0o20000 /* O_ASYNC */ | 0o40000 /* O_DIRECT */ | 0o1000000 /* O_NOATIME */;
/** Kinds opened by path with their flags; every other kind gets its status flags by F_SETFL. */
const OPENED = new Set<string>(['reg', 'dir', 'chr']);

/** A free name next to where the deleted file was (the name itself is gone again at once). */
function ghostPath(path: string): string {
  const dir = existsSync(dirname(path)) ? dirname(path) : '/tmp';
  for (let i = 0; ; i++) {
    const p = join(dir, `.criu-ts-ghost-${process.pid}-${i}`);
    if (!existsSync(p)) return p;
  }
}

function openFile(stub: Stub, src: ImageSource, e: FdEntry): number {
  const flags = e.flags & ~CREATE_ONLY;
  if (e.kind === 'reg' && e.deleted) {
    const path = ghostPath(e.path!);
    writeFileSync(path, ghostContent(src, e.deleted.ghost, e.deleted.size), { mode: 0o600, flag: 'wx' });
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

/** The stub fd of one saved fd whose object is made on its own. */
function create(ctx: FdRestoreContext, e: FdEntry, memfds: Map<number, number>): number {
  switch (e.kind) {
    case 'eventfd':
      return createEventfd(ctx, e);
    case 'signalfd':
      return createSignalfd(ctx, e);
    case 'timerfd':
      return createTimerfd(ctx, e);
    case 'epoll':
      return createEpoll(ctx);
    case 'inotify':
      return createInotify(ctx, e);
    case 'memfd':
      return createMemfd(ctx, e, memfds);
    default:
      return openFile(ctx.stub, ctx.src, e);
  }
}

export function restoreFiles(stub: Stub, files: Files, src: ImageSource, shellJob: boolean, log: Logger, inheritFds: InheritFd[] = [], tree?: TreeFds): void {
  const r = stub.remote;
  const inherited = files.fds.filter((e) => e.kind === 'inherited');
  if (inherited.length && !shellJob) {
    throw new CriuError('EINVAL', `fds ${inherited.map((e) => e.fd).join(', ')} were dumped with --shell-job; restore with --shell-job too`);
  }
  const given = new Map(inheritFds.map((i) => [i.key, i.fd]));
  for (const e of files.fds) {
    if (e.kind === 'pipe' && e.pipe?.outside && !e.sharedWith && !given.has(e.target)) {
      throw new CriuError('EINVAL', `fd ${e.fd} was one end of ${e.target}, whose other end was outside the process: give its new end with --inherit-fd fd[N]:${e.target}`);
    }
  }
  // The stub holds the restorer's fds 0-2; keep those the image inherits, close the rest.
  const keep = new Set(inherited.map((e) => e.fd));
  for (const fd of readdirSync(`/proc/${stub.pid}/fd`).map(Number)) {
    if (!keep.has(fd)) r.call(SYS.close, `close(${fd})`, fd);
  }
  const maxFd = Math.max(2, ...files.fds.map((e) => e.fd));
  roomForFds(stub, 2 * maxFd + 64);
  const stubFds = new StubFds(stub.pid);
  try {
    const ctx: FdRestoreContext = { stub, src, place: new FdPlacer(stub, maxFd + 1), log, withOurs: (fd, fn) => stubFds.with(fd, fn), ...(tree ? { tree } : {}) };
    makeObjects(ctx, files.fds, given);
    placeAll(ctx, files.fds);
    registerEpolls(ctx, files.fds);
    for (const t of ctx.place.temp.values()) r.call(SYS.close, 'close', t);
  } finally {
    stubFds.close();
  }
}

/** Every object the table needs, each at a temporary number (ctx.place.temp). */
function makeObjects(ctx: FdRestoreContext, fds: FdEntry[], given: Map<string, number>): void {
  const { place, stub } = ctx;
  // Shared with a process restored before (fork inheritance): the same object, taken from it.
  for (const e of fds) {
    if (e.sharedWith && e.kind !== 'inherited' && e.dupOf === undefined) place.temp.set(e.fd, place.park(ctx.tree!.takeShared(stub, e)));
  }
  for (const e of fds) {
    if (place.temp.has(e.fd)) continue;
    const from = e.kind === 'inherited' || e.dupOf !== undefined ? undefined : given.get(e.target);
    if (from === undefined) continue;
    ctx.log.debug(`fd ${e.fd}: ${e.target} is this process's fd ${from} (--inherit-fd)`);
    place.temp.set(e.fd, takeInherited(ctx, from));
  }
  openPipes(ctx, fds);
  openFifos(ctx, fds);
  restoreSockets(ctx, fds.filter((e) => e.kind === 'unix' || e.kind === 'inet'));
  const memfds = new Map<number, number>();
  for (const e of fds) {
    if (e.kind === 'inherited' || e.dupOf !== undefined || place.temp.has(e.fd)) continue;
    place.temp.set(e.fd, place.park(create(ctx, e, memfds)));
    if (e.pos && e.kind !== 'chr') stub.remote.call(SYS.lseek, `lseek(${e.fd})`, place.temp.get(e.fd)!, e.pos, SEEK_SET);
  }
}

/** Every fd dup3'ed to its number with its close-on-exec flag and status flags. */
function placeAll(ctx: FdRestoreContext, fds: FdEntry[]): void {
  const r = ctx.stub.remote;
  for (const e of fds) {
    if (e.kind === 'inherited') {
      // The description is the restorer's, and Node makes its stdio non-blocking: give it
      // back the flags the process had (a blocking read must not turn into EAGAIN).
      ctx.log.debug(`fd ${e.fd}: inherited from the restoring process (--shell-job)`);
      if (existsSync(`/proc/${ctx.stub.pid}/fd/${e.fd}`)) r.call(SYS.fcntl, `fcntl(F_SETFL ${e.fd})`, e.fd, F.SETFL, e.flags & SETFL_MASK);
      continue;
    }
    const from = ctx.place.temp.get(e.dupOf ?? e.fd);
    if (from === undefined) throw new CriuError('EINVAL', `fd ${e.fd}: a dup of fd ${e.dupOf}, which the image does not hold`);
    r.call(SYS.dup3, `dup3(${e.fd})`, from, e.fd, e.cloexec ? O.CLOEXEC : 0);
    if (e.dupOf === undefined && !OPENED.has(e.kind)) r.call(SYS.fcntl, `fcntl(F_SETFL ${e.fd})`, e.fd, F.SETFL, e.flags & SETFL_MASK);
  }
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
