// Counting a process's entries to chosen syscalls from outside, without stopping it: one perf
// event per thread on the tracepoint raw_syscalls:sys_enter, filtered on the syscall number,
// inherited by the threads and processes each thread creates from then on. Counting only (no
// samples, no ring buffer); the filter runs in the kernel, on the process's own entries.
import { closeSync, readFileSync, readSync } from 'node:fs';
import { CriuError } from '../errors.js';
import { native } from './native.js';
import { eachTask } from './procfs.js';

const PERF_TYPE_TRACEPOINT = 2;
/** PERF_ATTR_SIZE_VER0: type, size, config, sample period, sample type, read format, flags, ... */
const ATTR_SIZE = 64;
const ATTR_FLAG_INHERIT = 1n << 1n;
const PERF_FLAG_FD_CLOEXEC = 8;
/** _IOW('$', 6, char *) */
const PERF_EVENT_IOC_SET_FILTER = 0x40082406;
const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

function tracepointId(): number {
  for (const t of TRACEFS) {
    try {
      return Number(readFileSync(`${t}/events/raw_syscalls/sys_enter/id`, 'utf8'));
    } catch {
      /* the next mount point */
    }
  }
  throw new CriuError('ENOENT', `no tracefs with raw_syscalls:sys_enter (looked in ${TRACEFS.join(', ')})`);
}

export class SyscallCount {
  private constructor(private fds: number[]) {}

  /**
   * Counts from now on the entries of pid (every thread it has, and those made later) to the
   * syscalls `nrs`. Threads are listed until a listing finds none without a counter (one
   * made meanwhile by a thread that had none yet). Throws where the kernel, the container or
   * our privileges refuse (the error says why).
   */
  static open(pid: number, nrs: number[]): SyscallCount {
    const attr = Buffer.alloc(ATTR_SIZE);
    attr.writeUInt32LE(PERF_TYPE_TRACEPOINT, 0);
    attr.writeUInt32LE(ATTR_SIZE, 4);
    attr.writeBigUInt64LE(BigInt(tracepointId()), 8);
    attr.writeBigUInt64LE(ATTR_FLAG_INHERIT, 40);
    const filter = Buffer.from(`${nrs.map((n) => `id == ${n}`).join(' || ')}\0`);
    const c = new SyscallCount([]);
    try {
      eachTask(pid, 'count its syscalls', (tid) => {
        const fd = native.perfEventOpen(attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
        c.fds.push(fd);
        native.ioctlBuffer(fd, PERF_EVENT_IOC_SET_FILTER, filter);
      });
      return c;
    } catch (e) {
      c.close();
      throw e;
    }
  }

  /** The entries counted so far, in all threads (those inherited included). */
  read(): number {
    const b = Buffer.alloc(8);
    let n = 0n;
    for (const fd of this.fds) {
      if (readSync(fd, b, 0, 8, null) !== 8) throw new CriuError('EIO', 'short read of a perf counter');
      n += b.readBigUInt64LE(0);
    }
    return Number(n);
  }

  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}
