// files-PID.json: the fd table. Each fd has its number, kind, open flags and kind-specific
// state (src/images/fd-kinds.ts); the content of a deleted-but-open file or of a memfd is
// saved beside it as ghost-PID-FD.zst.
import { readJson, writeJson, type DeferredSyncs } from './io.js';
import type { SetLocation } from './source.js';
import { arr, base64, bool, literal, obj, opt, str, uint, SchemaError, type Check, type Infer } from './schema.js';
import { epollState, eventfdState, fifoState, ghostName, inetState, inotifyState, memfdState, signalfdState, timerfdState, unixState } from './fd-kinds.js';

export const filesFile = (pid: number) => `files-${pid}.json`;
export const ghostFile = (pid: number, fd: number) => `ghost-${pid}-${fd}.zst`;

export const FD_KINDS = ['reg', 'dir', 'chr', 'pipe', 'fifo', 'unix', 'inet', 'eventfd', 'epoll', 'timerfd', 'signalfd', 'inotify', 'memfd', 'inherited'] as const;
export type FdKind = (typeof FD_KINDS)[number];

const fdFields = obj({
  fd: uint,
  /**
   * reg: a regular file (path, offset); dir: a directory; chr: a character device reopened
   * by path (/dev/null ...); pipe: one end of a pipe; fifo: a named pipe, by path; unix,
   * inet: sockets; eventfd, epoll, timerfd, signalfd, inotify, memfd: kernel objects, each
   * with its state under the field of its name; inherited: --shell-job std fds, taken from
   * the restoring process.
   */
  kind: literal(...FD_KINDS),
  /** open(2) flags as fdinfo shows them (access mode, O_APPEND, O_NONBLOCK ...), without O_CLOEXEC. */
  flags: uint,
  cloexec: bool,
  path: opt(str),
  pos: opt(uint),
  deleted: opt(obj({ ghost: ghostName, size: uint, mode: uint })),
  /** This fd shares its open file description with that lower fd (dup, fork): restored as a dup. */
  dupOf: opt(uint),
  /**
   * Process trees: this fd shares its open file description with fd `fd` of process `pid`,
   * restored before this one (fork inheritance): it is taken from there, not made again.
   */
  sharedWith: opt(obj({ pid: uint, fd: uint })),
  /**
   * Pipes: the pipe's inode (pairs the ends), its capacity, and the data buffered in it (on
   * the read end). outside: the other end was outside the process; restore needs
   * --inherit-fd fd[N]:pipe:[ID] for it. creator: the ends are in several processes of the
   * tree; that one (the first) makes the pipe and the others take their ends.
   */
  pipe: opt(obj({ id: uint, size: uint, data: opt(base64), outside: opt(bool), creator: opt(uint) })),
  fifo: opt(fifoState),
  unix: opt(unixState),
  inet: opt(inetState),
  eventfd: opt(eventfdState),
  epoll: opt(epollState),
  timerfd: opt(timerfdState),
  signalfd: opt(signalfdState),
  inotify: opt(inotifyState),
  memfd: opt(memfdState),
  /** What was there (for show, for errors and for --inherit-fd): "pipe:[123]", "/dev/pts/0" ... */
  target: str,
});

/** Kinds whose state lives in a field of the kind's name, and the kinds that need a path. */
const STATE_FIELDS = ['pipe', 'fifo', 'unix', 'inet', 'eventfd', 'epoll', 'timerfd', 'signalfd', 'inotify', 'memfd'] as const;
const PATH_KINDS = new Set<string>(['reg', 'dir', 'chr', 'fifo']);

/** The fields, and that they fit the kind: an fd of one kind carrying another's state is a foreign file. */
export const fdSchema: Check<Infer<typeof fdFields>> = (v, p) => {
  const e = fdFields(v, p);
  const at = (f: string) => (p ? `${p}.${f}` : f);
  if (e.dupOf !== undefined) {
    if (e.dupOf >= e.fd) throw new SchemaError(at('dupOf'), `fd ${e.fd} can only be a dup of a lower fd`);
    return e;
  }
  for (const f of STATE_FIELDS) {
    const has = e[f] !== undefined;
    if (has && f !== e.kind) throw new SchemaError(at(f), `state of a ${f}, but the fd is a ${e.kind}`);
    if (!has && f === e.kind) throw new SchemaError(at(f), `missing: a ${f} needs its state`);
  }
  if (PATH_KINDS.has(e.kind) && e.path === undefined) throw new SchemaError(at('path'), `missing: a ${e.kind} needs its path`);
  return e;
};

export const filesSchema = obj({ pid: uint, fds: arr(fdSchema) });

export type Files = Infer<typeof filesSchema>;
export type FdEntry = Infer<typeof fdSchema>;

export const writeFiles = (dir: string, f: Files, syncs?: DeferredSyncs) => writeJson(dir, filesFile(f.pid), f, syncs);
export const readFiles = (from: SetLocation, pid: number): Files => readJson(from, filesFile(pid), filesSchema);
