// core-TID.json: one thread's CPU and signal state; the leader's file also holds the
// process-wide state (sigactions, rlimits, cwd, credentials ...) under `process`.
import { readJson, writeJson, type DeferredSyncs } from './io.js';
import type { SetLocation } from './source.js';
import { arr, base64, bool, hex, int, nullable, obj, opt, record, str, uint, type Infer } from './schema.js';

export const coreFile = (tid: number) => `core-${tid}.json`;

const sigaction = obj({ sig: uint, handler: hex, flags: hex, restorer: hex, mask: hex });
const rlimit = obj({ resource: uint, soft: hex, hard: hex });

export const processStateSchema = obj({
  comm: str,
  sigactions: arr(sigaction),
  /** Signals queued for the whole process: raw 128-byte siginfo_t records. */
  sharedPending: arr(base64),
  rlimits: arr(rlimit),
  cwd: str,
  root: str,
  umask: uint,
  personality: uint,
  creds: obj({ uid: arr(uint), gid: arr(uint), groups: arr(uint) }),
  pgid: uint,
  sid: uint,
  dumpable: uint,
  noNewPrivs: uint,
  pdeathsig: uint,
  childSubreaper: uint,
  thpDisabled: uint,
  /** The signal that had the process in a group stop, or 0. */
  stoppedBy: uint,
});

export const coreSchema = obj({
  tid: uint,
  pid: uint,
  comm: str,
  /** user_regs_struct, as it was at the stop (restart fix-up is applied at restore). */
  regs: record(hex),
  /** NT_X86_XSTATE as the kernel gave it (XSAVE layout). */
  xstate: base64,
  sigmask: hex,
  pending: arr(base64),
  sigaltstack: obj({ sp: hex, flags: int, size: uint }),
  rseq: nullable(obj({ ptr: hex, size: uint, signature: uint, flags: uint })),
  robustList: obj({ head: hex, len: uint }),
  tidAddress: hex,
  process: opt(processStateSchema),
  /**
   * The thread was in restart_syscall (an interrupted sleep resumed by the kernel after an
   * earlier stop): the syscall it restarts, as read from the code before rip, if known.
   */
  restartSyscall: opt(uint),
  /** Thread was stopped inside a syscall (for show and logs). */
  inSyscall: opt(bool),
});

export type Core = Infer<typeof coreSchema>;
export type ProcessState = Infer<typeof processStateSchema>;
export type Sigaction = Infer<typeof sigaction>;

export const writeCore = (dir: string, c: Core, syncs?: DeferredSyncs) => writeJson(dir, coreFile(c.tid), c, syncs);
export const readCore = (from: SetLocation, tid: number): Core => readJson(from, coreFile(tid), coreSchema);
