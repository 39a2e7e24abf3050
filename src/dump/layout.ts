// A dump's view of a process's VMAs: the layout from /proc/PID/maps at the freeze, and each
// VMA's VmFlags from smaps, the only file that has them. smaps walks every page table (20-30
// ms of CPU for 4 GiB on this VM, while the process is frozen and the copy wants the cores),
// so it is read before the freeze where that gives the same answer: its flags change only by
// the process's own syscalls, and those are counted from before the read to the freeze (see
// FlagsEarly). Otherwise, or if the layout differs, it is read while frozen.
import { CriuError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Vma } from '../images/mm.js';
import { readMaps, readSmaps, readSmapsAsync, type MapEntry } from '../kernel/procfs.js';
import { SyscallCount } from '../kernel/syscall-count.js';
import { SYS } from '../kernel/syscalls.js';
import { classifyVma } from './collect-mm.js';
import { startTime } from './tracking.js';

export interface Layout {
  maps: MapEntry[];
  /** Without VmFlags until vmFlagsInto (nothing before the mm's write needs them). */
  vmas: Vma[];
  /** smaps, read before the freeze (see FlagsEarly) or on the libuv pool while frozen. */
  smaps?: Promise<MapEntry[]>;
}

/** The VMAs from /proc/PID/maps (their VmFlags come later: vmFlagsInto). */
export function readLayout(pid: number): Layout {
  const maps = readMaps(pid);
  return { maps, vmas: maps.map((m) => classifyVma(pid, m)) };
}

/**
 * The syscalls by which a process changes its VMAs' flags (madvise, mlock, prctl's VMA and
 * KSM settings, mseal) or maps anew where a VMA was (mmap, mremap, ...; the layout is also
 * compared), or replaces its memory (execve).
 */
const CHANGES_VMAS = [
  SYS.mmap, SYS.mprotect, SYS.munmap, SYS.brk, SYS.mremap, SYS.madvise, SYS.shmat, SYS.shmdt, SYS.execve, SYS.mlock, SYS.munlock, SYS.mlockall,
  SYS.munlockall, SYS.prctl, SYS.remap_file_pages, SYS.execveat, SYS.mlock2, SYS.pkey_mprotect, SYS.process_madvise, SYS.mseal,
];

/**
 * smaps read before the freeze, with a count of the process's syscalls that could change what
 * it says, started before the read. If the count is still 0 once the process is frozen, the
 * flags read are the flags at the freeze (a VMA whose bounds or protection moved meanwhile,
 * a stack grown by a fault, is caught by the comparison with the maps read while frozen).
 */
export class FlagsEarly {
  private constructor(
    readonly pid: number,
    private count: SyscallCount,
    readonly smaps: Promise<MapEntry[]>,
    /** The process's start time: the one frozen must be the one counted (not a reused pid). */
    private started: number,
  ) {}

  /** Starts the count, then the read (on the libuv pool); undefined where counting is refused. */
  static start(pid: number, log: Logger): FlagsEarly | undefined {
    let count: SyscallCount;
    let started: number;
    try {
      started = startTime(pid);
      count = SyscallCount.open(pid, CHANGES_VMAS);
    } catch (e) {
      log.debug(`VmFlags (pid ${pid}): read while frozen (syscalls not countable: ${(e as Error).message})`);
      return undefined;
    }
    const smaps = readSmapsAsync(pid);
    smaps.catch(() => {}); // awaited by whoever uses it; a dump that fails first never asks
    return new FlagsEarly(pid, count, smaps, started);
  }

  /**
   * Once the process is frozen, before anything of ours runs in it: the smaps read early if
   * it still holds. The count stays open (see close).
   */
  held(log: Logger): Promise<MapEntry[]> | undefined {
    let n: number;
    try {
      n = this.count.read();
    } catch (e) {
      // Only a shortcut: without a count, smaps is read while frozen.
      log.debug(`VmFlags (pid ${this.pid}): read again while frozen (the count could not be read: ${(e as Error).message})`);
      return undefined;
    }
    if (n === 0 && startTime(this.pid) === this.started) {
      log.debug(`VmFlags (pid ${this.pid}): read before the freeze (no syscall since that could change them)`);
      return this.smaps;
    }
    log.debug(`VmFlags (pid ${this.pid}): read again while frozen (${n} syscall(s) since the early read could have changed them)`);
    return undefined;
  }

  /**
   * Stops the count: once the process runs again or is killed, since closing the last
   * counter on the tracepoint unregisters it, and that waits for an RCU grace period
   * (10-20 ms on this VM, measured inside a final dump's frozen window).
   */
  close(): void {
    this.count.close();
  }
}

/**
 * Gives each VMA of the layout its VmFlags from smaps (layout.smaps, or read now). smaps read
 * while frozen shows the same VMAs (our scratch page was gone before it was read); one read
 * before the freeze may not. If it differs, smaps is read once more (the process is still
 * frozen), and a layout that still differs fails the dump.
 */
export async function vmFlagsInto(pid: number, layout: Layout, log: Logger): Promise<void> {
  const fit = (smaps: MapEntry[]) => {
    const byStart = new Map(smaps.map((m) => [m.start, m]));
    const found = layout.maps.map((m) => byStart.get(m.start));
    const same = found.every((f, i) => {
      const m = layout.maps[i]!;
      return f && f.end === m.end && f.perms === m.perms && f.offset === m.offset && f.inode === m.inode;
    });
    return same ? (found as MapEntry[]) : undefined;
  };
  let got = fit(await (layout.smaps ?? readSmapsAsync(pid)));
  if (!got) {
    log.debug(`VmFlags (pid ${pid}): smaps differs from maps; read again`);
    got = fit(readSmaps(pid));
  }
  if (!got) throw new CriuError('EAGAIN', `pid ${pid}: its memory layout changed while it was frozen (smaps differs from maps)`);
  layout.vmas.forEach((v, i) => {
    v.vmFlags = got[i]!.vmFlags ?? [];
    v.growsDown = v.vmFlags.includes('gd');
  });
}
