// The lazy page server's I/O: read faults and events from each uffd, fill what the
// pending plan says, push the rest in the background, finish when nothing is owed.
//
//   loop: poll(uffds, target pidfd) ─► faults: copy the cluster (UFFDIO_COPY), zero-fill the
//         rest of it (UFFDIO_ZEROPAGE), wake the faulting page ─► events: fork (a new uffd and
//         a copy of the debt), remap (debt moves), remove/unmap (debt dropped)
//         ─► nothing to read: push one batch (small right after a fault, large when idle)
//   end:  nothing owed: unregister, close, tell the guardian "done"
import { closeSync, readFileSync } from 'node:fs';
import { ImageError } from '../images/errors.js';
import type { PagesReader } from '../images/pages.js';
import { hasCode, native } from '../kernel/native.js';
import { readSmaps } from '../kernel/procfs.js';
import { copyAll, parseMsg, zeroAll, UFFD_MSG_SIZE } from '../kernel/uffd.js';
import type { Logger } from '../log.js';
import type { Guardian } from './guardian.js';
import { batchBytes, Pending, type CopyOp } from './pending.js';

const POLLIN = 1;
const POLLERR = 8;
const POLLHUP = 0x10;

export interface Space {
  fd: number;
  pid: number;
  pending: Pending;
  /** The process's page readers (newest set first); a forked child shares its parent's. */
  readers: PagesReader[];
  /** A pidfd of the process (-1: unknown): readable once it exits. */
  pidfd?: number;
}

export interface LazyStats {
  faults: number;
  faultBytes: number;
  pushedBytes: number;
  zeroBytes: number;
  events: number;
  /** Server-side fault service times (read to wake), µs. */
  faultP50Us: number;
  faultP99Us: number;
  completeMs: number;
  /** Why it stopped early ('exited': the process ended first). */
  ended: 'complete' | 'exited';
}

export class LazyServer {
  private spaces: Space[] = [];
  private msgs = Buffer.alloc(UFFD_MSG_SIZE * 64);
  private scratch = Buffer.alloc(4 << 20);
  private lastFault = -1e9;
  private faultTimes: number[] = [];
  private stats = { faults: 0, faultBytes: 0, pushedBytes: 0, zeroBytes: 0, events: 0 };
  private readonly t0 = performance.now();

  constructor(
    private readonly log: Logger,
    private readonly guardian: Guardian | undefined,
    private readonly clusterBytes: number,
  ) {}

  add(space: Space): void {
    if (space.pidfd === undefined) {
      try {
        space.pidfd = space.pid ? native.pidfdOpen(space.pid) : -1;
      } catch {
        space.pidfd = -1;
      }
    }
    this.spaces.push(space);
  }

  private remove(s: Space, finished: boolean): void {
    if (finished) this.finish(s);
    else closeSync(s.fd);
    if (s.pidfd !== undefined && s.pidfd >= 0) closeSync(s.pidfd);
    this.spaces.splice(this.spaces.indexOf(s), 1);
  }

  /** The bytes of one copy op, without copying when it lies within one frame. */
  private source(s: Space, op: CopyOp): [Buffer, number] {
    const r = s.readers[op.set]!;
    const fr = r.index.frameRawSize;
    const i = Math.floor(op.streamOff / fr);
    if (Math.floor((op.streamOff + op.len - 1) / fr) === i) return [r.frame(i), op.streamOff - i * fr];
    if (this.scratch.length < op.len) this.scratch = Buffer.alloc(op.len);
    r.readStream(op.streamOff, op.len, this.scratch, 0);
    return [this.scratch, 0];
  }

  /** Runs ops; on EAGAIN (the mm is changing: events wait) the rest is given back. */
  private execute(s: Space, ops: CopyOp[]): 'ok' | 'again' {
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k]!;
      const [buf, off] = this.source(s, op);
      try {
        copyAll(s.fd, op.dst, buf, off, op.len);
      } catch (e) {
        if (hasCode(e, 'EAGAIN')) {
          s.pending.giveBack(ops.slice(k));
          return 'again';
        }
        // ENOENT: the range went away before we read its event: nothing to fill.
        if (!hasCode(e, 'ENOENT', 'ESRCH')) throw e;
      }
    }
    return 'ok';
  }

  private serveFault(s: Space, addr: number): void {
    const t = performance.now();
    this.lastFault = t;
    const plan = s.pending.fault(addr, this.clusterBytes);
    if (this.execute(s, plan.copies) === 'again') return; // the thread refaults after the events
    for (const z of plan.zeros) {
      try {
        this.stats.zeroBytes += zeroAll(s.fd, z.start, z.len).copied;
      } catch (e) {
        if (!hasCode(e, 'EAGAIN', 'ENOENT', 'ESRCH')) throw e;
      }
    }
    const page = addr - (addr % 4096);
    try {
      native.uffdWake(s.fd, page, 4096);
    } catch (e) {
      if (!hasCode(e, 'ENOENT', 'EINVAL', 'ESRCH')) throw e;
    }
    this.stats.faults++;
    this.stats.faultBytes += plan.copies.reduce((n, c) => n + c.len, 0);
    this.faultTimes.push((performance.now() - t) * 1000);
  }

  /** Reads and handles every message waiting on s. Returns false when s is finished. */
  private drain(s: Space): boolean {
    for (;;) {
      let n: number;
      try {
        n = native.uffdRead(s.fd, this.msgs);
      } catch (e) {
        if (hasCode(e, 'EBADF', 'ESRCH')) return false;
        throw e;
      }
      if (n === 0) return true;
      for (let i = 0; i < n; i++) {
        const m = parseMsg(this.msgs, i);
        switch (m.event) {
          case 'pagefault':
            this.serveFault(s, m.address);
            break;
          case 'fork': {
            this.stats.events++;
            const child = newChild(s.pid, this.spaces.map((x) => x.pid));
            const space: Space = { fd: m.ufd, pid: child ?? 0, pending: s.pending.clone(), readers: s.readers };
            this.guardian?.hold(m.ufd);
            if (child) this.guardian?.watch(child);
            this.add(space);
            this.log.debug(`fork: pid ${child ?? '?'} gets uffd ${m.ufd}`);
            break;
          }
          case 'remap':
            this.stats.events++;
            s.pending.remap(m.from, m.to, m.len);
            break;
          case 'remove':
          case 'unmap':
            this.stats.events++;
            s.pending.drop(m.start, m.end, m.event === 'unmap');
            break;
          default:
            throw new Error(`unexpected userfaultfd message ${m.code}`);
        }
      }
    }
  }

  /** Ends a space whose debt is paid: unregister what is still registered, close the uffd. */
  private finish(s: Space): void {
    try {
      for (const m of readSmaps(s.pid)) {
        if (m.vmFlags?.includes('um')) native.uffdUnregister(s.fd, m.start, m.end - m.start);
      }
    } catch {
      /* the process is gone: nothing to unregister */
    }
    closeSync(s.fd);
  }

  /**
   * Serves until every space is paid or its process has exited. Synchronous: a dedicated
   * loop, polling every uffd and every process's pidfd.
   */
  run(): LazyStats {
    let exited = 0;
    for (;;) {
      for (const s of this.spaces.filter((x) => x.pending.owed === 0)) this.remove(s, true);
      if (this.spaces.length === 0) break;
      const owed = this.spaces.some((s) => s.pending.owed > 0);
      const n = this.spaces.length;
      const fds = [...this.spaces.map((s) => s.fd), ...this.spaces.map((s) => s.pidfd ?? -1)];
      const revents = native.poll(fds, fds.map(() => POLLIN), owed ? 0 : -1);
      let busy = false;
      for (let i = n - 1; i >= 0; i--) {
        const s = this.spaces[i]!;
        const ev = revents[i]!;
        if (ev & POLLIN) busy = true;
        let gone = (revents[n + i]! & POLLIN) !== 0;
        if (!gone && ev & (POLLIN | POLLERR | POLLHUP)) gone = !this.drain(s) || (ev & (POLLERR | POLLHUP)) !== 0;
        if (gone) {
          exited++;
          this.remove(s, false);
        }
      }
      if (busy) continue;
      // Nothing to read: pay some debt, hottest first.
      const bytes = batchBytes(performance.now() - this.lastFault);
      for (const s of this.spaces) {
        const ops = s.pending.nextBatch(bytes);
        if (this.execute(s, ops) === 'again') this.drain(s);
        this.stats.pushedBytes += ops.reduce((n, c) => n + c.len, 0);
      }
    }
    const sorted = [...this.faultTimes].sort((a, b) => a - b);
    const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : 0);
    return { ...this.stats, faultP50Us: pct(0.5), faultP99Us: pct(0.99), completeMs: performance.now() - this.t0, ended: exited ? 'exited' : 'complete' };
  }
}

/** The newest child of pid that we do not serve yet (the one a fork event is about). */
function newChild(pid: number, known: number[]): number | undefined {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.filter((k) => !known.includes(k)).pop();
  } catch {
    return undefined;
  }
}

export { ImageError };
