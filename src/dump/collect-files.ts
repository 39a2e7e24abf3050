// The fd table (files-PID.json). Each fd is classified by its /proc link and stat, then its
// kind's collector (src/dump/fds/*) saves its state. fds that share one open file
// description are found with kcmp and saved as dups. Kinds not supported stop the dump
// *before* anything is harmed, naming the fd, its kind and the pid.
//
//   regular file  path, offset; deleted: its content (ghost file)
//   directory, /dev/null|zero|full|random|urandom   path
//   pipe          both ends here: recreated with its data (tee); one end outside: recorded,
//                 restored only with --inherit-fd fd[N]:pipe:[ID]
//   FIFO          path, data (unless held open outside)
//   unix, TCP, UDP sockets, eventfd, epoll, timerfd, signalfd, inotify, memfd: see fds/*
//   --shell-job   std fds that are terminals or outside pipes: the restorer's
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import type { FdEntry, Files } from '../images/files.js';
import { native } from '../kernel/native.js';
import { unixDiag } from '../kernel/sock-diag.js';
import { AF } from '../kernel/sockets.js';
import { O } from '../kernel/syscalls.js';
import { silentLogger, type Logger } from '../log.js';
import { collectEpoll, collectEventfd, collectSignalfd, collectTimerfd } from './fds/anon.js';
import { readFdinfo, TargetFds, unsupported, type FdCollectContext, type FdInfo } from './fds/common.js';
import { saveGhost } from './fds/ghost.js';
import { collectInet } from './fds/inet.js';
import { collectInotify } from './fds/inotify.js';
import { collectMemfd, isMemfd } from './fds/memfd.js';
import { fifoContent, holderNames, holdersOf, teePipe } from './fds/pipes.js';
import { sockKind } from './fds/sock-options.js';
import { collectUnix, type UnixPeers } from './fds/unix.js';
import { describeSocketFamily, describeTarget } from './fds/unsupported.js';
import type { HeldConnections } from './fds/tcp.js';

const DELETED = ' (deleted)';
/** Character devices that are the same everywhere and reopen by path. */
const PLAIN_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom']);
const KCMP_FILE = 0;

export interface FilesOptions {
  shellJob: boolean;
  /** Where ghost files go. */
  dir: string;
  /** --tcp-established: where established connections are read and held. */
  tcp?: HeldConnections;
  log?: Logger;
  /** The holders of its pipes, found before the freeze (see pipeHolders); else scanned now. */
  pipeHolders?: Map<string, number[]>;
}

export interface CollectedFiles {
  files: Files;
  ghostBytes: number;
  /** Remarks for the dump's result: what is not restored exactly. */
  notes: string[];
}

interface RawFd {
  fd: number;
  target: string;
  info: FdInfo;
}

const ANON = /^anon_inode:\[?([\w-]+)\]?$/;
const SOCKET = /^socket:\[(\d+)\]$/;

export function collectFiles(pid: number, o: FilesOptions): CollectedFiles {
  const raw: RawFd[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b)) {
    try {
      raw.push({ fd, target: readlinkSync(`/proc/${pid}/fd/${fd}`), info: readFdinfo(pid, fd) });
    } catch {
      /* closed meanwhile: cannot happen while frozen, but harmless */
    }
  }
  const targetFds = new TargetFds(pid);
  try {
    const ctx: FdCollectContext = {
      pid,
      dir: o.dir,
      log: o.log ?? silentLogger,
      notes: [],
      ...(o.tcp ? { tcp: o.tcp } : {}),
      targets: new Map(raw.map((r) => [r.fd, r.target])),
      withFd: (fd, fn) => targetFds.with(fd, fn),
    };
    return collectAll(ctx, raw, o);
  } finally {
    targetFds.close();
  }
}

function collectAll(ctx: FdCollectContext, raw: RawFd[], o: FilesOptions): CollectedFiles {
  const { pid } = ctx;
  // Which pipes have both ends here (only those can be recreated from the image alone).
  const pipeEnds = new Map<string, Set<number>>();
  for (const r of raw) {
    if (r.target.startsWith('pipe:[')) {
      const ends = pipeEnds.get(r.target) ?? new Set<number>();
      ends.add(r.info.flags & O.ACCMODE);
      pipeEnds.set(r.target, ends);
    }
  }
  const bothEnds = (target: string) => pipeEnds.get(target)!.size === 2;
  // The unix sockets of the process, as sock_diag sees them: asked once, when the first one comes.
  let peers: UnixPeers | undefined;
  const unixPeers = (): UnixPeers => (peers ??= { diag: unixDiag(new Set(raw.flatMap((r) => SOCKET.exec(r.target)?.slice(1).map(Number) ?? []))) });
  const fds: FdEntry[] = [];
  let ghostBytes = 0;
  const dataTaken = new Set<string>();
  const memfds = new Set<number>();
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
    if (o.shellJob && fd <= 2 && !target.startsWith('/') && !(target.startsWith('pipe:[') && bothEnds(target))) {
      fds.push({ ...base, kind: 'inherited' });
      continue;
    }
    if (target.startsWith('pipe:[')) {
      const id = Number(/\d+/.exec(target)![0]);
      if (!bothEnds(target)) {
        // CRIU's way: the dump records it, the restore takes the end the user gives.
        const holders = o.pipeHolders?.get(target) ?? holdersOf(pid, target);
        const by = holders.length ? ` (${holderNames(holders)})` : '';
        ctx.notes.push(`fd ${fd} is one end of ${target}, whose other end is outside the process${by}: restore it with --inherit-fd fd[N]:${target}`);
        fds.push({ ...base, kind: 'pipe', pipe: { id, size: 0, outside: true } });
      } else if ((info.flags & O.ACCMODE) === O.RDONLY && !dataTaken.has(target)) {
        dataTaken.add(target);
        const { size, data } = ctx.withFd(fd, teePipe);
        fds.push({ ...base, kind: 'pipe', pipe: { id, size, ...(data.length ? { data: data.toString('base64') } : {}) } });
      } else {
        fds.push({ ...base, kind: 'pipe', pipe: { id, size: 0 } });
      }
      continue;
    }
    const sock = SOCKET.exec(target);
    if (sock) {
      fds.push(collectSocket(ctx, base, Number(sock[1]), info, unixPeers));
      continue;
    }
    const anon = ANON.exec(target);
    if (anon) {
      fds.push(collectAnon(ctx, base, anon[1]!, info));
      continue;
    }
    if (!target.startsWith('/')) throw unsupported(pid, fd, describeTarget(target));
    const st = statSync(`/proc/${pid}/fd/${fd}`);
    if (st.isCharacterDevice()) {
      if (PLAIN_DEVICES.has(target)) fds.push({ ...base, kind: 'chr', path: target, pos: info.pos });
      else if (o.shellJob && fd <= 2) fds.push({ ...base, kind: 'inherited' });
      else throw unsupported(pid, fd, `a terminal or device (${target})`);
    } else if (st.isDirectory()) {
      fds.push({ ...base, kind: 'dir', path: target, pos: 0 });
    } else if (st.isFIFO()) {
      const first = !dataTaken.has(target);
      dataTaken.add(target);
      const heldOutside = first && holdersOf(pid, target, st).length > 0;
      const { size, data } = first && !heldOutside ? fifoContent(pid, fd) : { size: 0, data: Buffer.alloc(0) };
      fds.push({ ...base, kind: 'fifo', path: target, fifo: { id: st.ino, size, ...(data.length ? { data: data.toString('base64') } : {}), ...(heldOutside ? { heldOutside } : {}) } });
    } else if (!st.isFile()) {
      throw unsupported(pid, fd, `neither a regular file nor a directory (${target})`);
    } else if (isMemfd(target) && st.nlink === 0) {
      const m = collectMemfd(ctx, fd, target, memfds);
      ghostBytes += m.bytes;
      fds.push({ ...base, kind: 'memfd', pos: info.pos, memfd: m.state });
    } else if (target.endsWith(DELETED) && st.nlink === 0) {
      // The file is gone: keep its content; restore recreates it, opens it and unlinks it.
      const g = saveGhost(pid, fd, o.dir);
      ghostBytes += g.size;
      fds.push({ ...base, kind: 'reg', path: target.slice(0, -DELETED.length), pos: info.pos, deleted: { ghost: g.name, size: g.size, mode: st.mode & 0o7777 } });
    } else {
      fds.push({ ...base, kind: 'reg', path: target, pos: info.pos });
    }
  }
  for (const e of fds) ctx.log.debug(`pid ${pid} fd ${e.fd}: ${e.kind}${e.dupOf !== undefined ? ` (dup of ${e.dupOf})` : ''} ${e.target}`);
  return { files: { pid, fds }, ghostBytes, notes: ctx.notes };
}

type Base = Pick<FdEntry, 'fd' | 'flags' | 'cloexec' | 'target'>;

function collectSocket(ctx: FdCollectContext, base: Base, ino: number, info: FdInfo, unixPeers: () => UnixPeers): FdEntry {
  return ctx.withFd(base.fd, (ours): FdEntry => {
    const k = sockKind(ours);
    if (k.family === AF.UNIX) return { ...base, kind: 'unix', unix: collectUnix(ctx, base.fd, ours, k, ino, unixPeers(), info.text) };
    if (k.family === AF.INET || k.family === AF.INET6) return { ...base, kind: 'inet', inet: collectInet(ctx, base.fd, ours, k, ino) };
    throw unsupported(ctx.pid, base.fd, `${describeSocketFamily(k.family)} (${base.target})`);
  });
}

function collectAnon(ctx: FdCollectContext, base: Base, name: string, info: FdInfo): FdEntry {
  const { fd } = base;
  switch (name) {
    case 'eventfd':
      return { ...base, kind: 'eventfd', eventfd: collectEventfd(ctx, fd, info.text) };
    case 'eventpoll':
      return { ...base, kind: 'epoll', epoll: collectEpoll(ctx, fd, info.text) };
    case 'timerfd':
      return { ...base, kind: 'timerfd', timerfd: collectTimerfd(ctx, fd) };
    case 'signalfd':
      return { ...base, kind: 'signalfd', signalfd: collectSignalfd(ctx, fd, info.text) };
    case 'inotify':
      return { ...base, kind: 'inotify', inotify: collectInotify(ctx, fd, info.text) };
    default:
      throw unsupported(ctx.pid, fd, describeTarget(base.target));
  }
}
