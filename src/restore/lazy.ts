// Lazy restore's part of building the process: which memory arrives later, the userfaultfd
// that will bring it (made inside the stub, registered MISSING on those VMAs), and the
// pages that must be in before the process runs.
import type { Segment } from '../images/imageset.js';
import type { Core } from '../images/core.js';
import { native } from '../kernel/native.js';
import { UFFD } from '../kernel/syscalls.js';
import { copyAll, takeUffdFrom } from '../kernel/uffd.js';
import type { CopyOp, Pending, Range } from '../lazy/pending.js';
import { pendingFor } from '../lazy/memory.js';
export { isLazyVma, lazyRanges, splitSegments } from '../lazy/memory.js';
import type { PagesReader } from '../images/pages.js';
import type { Stub } from './stub.js';

const EVENTS = UFFD.FEATURE_EVENT_FORK | UFFD.FEATURE_EVENT_REMAP | UFFD.FEATURE_EVENT_REMOVE | UFFD.FEATURE_EVENT_UNMAP;

export interface LazySetup {
  fd: number;
  pending: Pending;
}

/** A uffd made in the stub, taken out, with the events on and the lazy VMAs registered. */
export function registerLazy(stub: Stub, ranges: Range[], inside: Segment[]): LazySetup {
  const { fd } = takeUffdFrom(stub.remote, stub.pid);
  native.uffdApi(fd, EVENTS);
  for (const r of ranges) native.uffdRegister(fd, r.start, r.end - r.start, UFFD.REGISTER_MODE_MISSING);
  return { fd, pending: pendingFor(ranges, inside) };
}

/** Fills claimed pages now (UFFDIO_COPY works on a stopped process too). */
export function fillNow(fd: number, ops: CopyOp[], readers: PagesReader[]): void {
  for (const op of ops) {
    const buf = Buffer.alloc(op.len);
    readers[op.set]!.readStream(op.streamOff, op.len, buf, 0);
    copyAll(fd, op.dst, buf, 0, op.len);
  }
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
