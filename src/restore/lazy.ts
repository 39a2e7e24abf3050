// Lazy restore's part of building the process: which memory arrives later, the userfaultfd
// that will bring it (made inside the stub, registered MISSING on those VMAs), and the
// pages that must be in before the process runs.
import { resolvePages } from '../images/imageset.js';
import type { Core } from '../images/core.js';
import { native } from '../kernel/native.js';
import { UFFD } from '../kernel/syscalls.js';
import { copyAll, takeUffdFrom, zeroAll } from '../kernel/uffd.js';
import type { Pending, Range } from '../lazy/pending.js';
import { pendingFor } from '../lazy/memory.js';
export { isLazyVma, lazyRanges, splitSegments } from '../lazy/memory.js';
import { isLazyVma } from '../lazy/memory.js';
import { addr, type Mm } from '../images/mm.js';

/** The memory a lazy restore writes before resume: every VMA it does not fill on demand. */
export function eagerRanges(mm: Mm): Range[] {
  return mm.vmas.filter((v) => !isLazyVma(v)).map((v) => ({ start: addr(v.start), end: addr(v.end) }));
}
import type { PagesReader } from '../images/pages.js';
import type { Stub } from './stub.js';

const EVENTS = UFFD.FEATURE_EVENT_FORK | UFFD.FEATURE_EVENT_REMAP | UFFD.FEATURE_EVENT_REMOVE | UFFD.FEATURE_EVENT_UNMAP;

export interface LazySetup {
  fd: number;
  /** The registered ranges: the server's debt in them is resolved after resume (debtOf). */
  ranges: Range[];
  readers: PagesReader[];
  pid: number;
}

/** A uffd made in the stub, taken out, with the events on and the lazy VMAs registered. */
export function registerLazy(stub: Stub, ranges: Range[], readers: PagesReader[], pid: number): LazySetup {
  const { fd } = takeUffdFrom(stub.remote, stub.pid);
  native.uffdApi(fd, EVENTS);
  for (const r of ranges) native.uffdRegister(fd, r.start, r.end - r.start, UFFD.REGISTER_MODE_MISSING);
  return { fd, ranges, readers, pid };
}

/**
 * Fills [start, end) now, from the image where it has data and with zeros elsewhere
 * (UFFDIO_COPY / ZEROPAGE work on a stopped process too). The server's debt, built later,
 * still lists these pages; filling them again finds them present and skips them.
 */
export function fillNow(s: LazySetup, r: Range, readers: PagesReader[]): void {
  let at = r.start;
  for (const seg of resolvePages(readers, s.pid, [r])) {
    if (seg.start + seg.len <= r.start || seg.start >= r.end || seg.zero) continue;
    const from = Math.max(seg.start, r.start);
    const to = Math.min(seg.start + seg.len, r.end);
    if (from > at) zeroAll(s.fd, at, from - at);
    const buf = Buffer.alloc(to - from);
    readers[seg.set]!.readStream(seg.streamOff + (from - seg.start), to - from, buf, 0);
    copyAll(s.fd, from, buf, 0, to - from);
    at = to;
  }
  if (at < r.end) zeroAll(s.fd, at, r.end - at);
}

/** The debt the server starts with. */
export function debtOf(s: LazySetup): Pending {
  return pendingFor(s.ranges, resolvePages(s.readers, s.pid, s.ranges));
}

/**
 * Pages the kernel itself writes before the process runs must be in first: a thread's rseq
 * area is written on every return to user mode (our injected syscalls included). Were its
 * page still missing, the write would fault into a server that is not serving yet.
 */
export function mustBeIn(cores: Core[]): Range[] {
  const out: Range[] = [];
  for (const c of cores) {
    if (!c.rseq) continue;
    const start = Number(BigInt(c.rseq.ptr));
    out.push({ start: start - (start % 4096), end: Math.ceil((start + c.rseq.size) / 4096) * 4096 });
  }
  return out;
}
