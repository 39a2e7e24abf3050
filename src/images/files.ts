// files-PID.json: the fd table. Each fd has its number, kind, open flags and kind-specific
// state; a deleted-but-open file's content is saved beside it as ghost-PID-FD.zst.
import { readJson, writeJson } from './io.js';
import type { SetLocation } from './source.js';
import { arr, base64, bool, literal, obj, opt, str, uint, type Check, type Infer } from './schema.js';
import { SchemaError } from './schema.js';

/** A ghost file's name: only ever one of ours, never a path that leads out of the set. */
const ghostName: Check<string> = (v, p) => {
  if (typeof v !== 'string' || !/^ghost-\d+-\d+\.zst$/.test(v)) throw new SchemaError(p, 'expected a ghost file name (ghost-PID-FD.zst)');
  return v;
};

export const filesFile = (pid: number) => `files-${pid}.json`;
export const ghostFile = (pid: number, fd: number) => `ghost-${pid}-${fd}.zst`;

export const fdSchema = obj({
  fd: uint,
  /**
   * reg: a regular file (path, offset); dir: a directory; chr: a character device reopened
   * by path (/dev/null ...); pipe: one end of a pipe whose both ends are in the process;
   * inherited: --shell-job std fds, taken from the restoring process.
   */
  kind: literal('reg', 'dir', 'chr', 'pipe', 'inherited'),
  /** open(2) flags as fdinfo shows them (access mode, O_APPEND, O_NONBLOCK ...), without O_CLOEXEC. */
  flags: uint,
  cloexec: bool,
  path: opt(str),
  pos: opt(uint),
  deleted: opt(obj({ ghost: ghostName, size: uint, mode: uint })),
  /** This fd shares its open file description with that lower fd (dup, fork): restored as a dup. */
  dupOf: opt(uint),
  /** Pipes: the pipe's inode (pairs the ends), its capacity, and the data buffered in it (on the read end). */
  pipe: opt(obj({ id: uint, size: uint, data: opt(base64) })),
  /** What was there (for show and for errors): "pipe:[123]", "/dev/pts/0" ... */
  target: str,
});

export const filesSchema = obj({ pid: uint, fds: arr(fdSchema) });

export type Files = Infer<typeof filesSchema>;
export type FdEntry = Infer<typeof fdSchema>;

export const writeFiles = (dir: string, f: Files) => writeJson(dir, filesFile(f.pid), f);
export const readFiles = (from: SetLocation, pid: number): Files => readJson(from, filesFile(pid), filesSchema);
