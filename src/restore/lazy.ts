// Lazy restore's part of building the process: which memory arrives later, the userfaultfd
// that will bring it (made inside the stub, registered MISSING on those VMAs), and the
// pages that must be in before the process runs.
import type { Segment } from '../images/imageset.js';
import { addr, type Mm, type Vma } from '../images/mm.js';
import type { Core } from '../images/core.js';
import { native } from '../kernel/native.js';
import { UFFD } from '../kernel/syscalls.js';
import { copyAll, takeUffdFrom } from '../kernel/uffd.js';
import { Pending, type CopyOp, type Range } from '../lazy/pending.js';
import type { PagesReader } from '../images/pages.js';
import type { Stub } from './stub.js';

/** Private anonymous memory (heap and stack included) can be filled by UFFDIO_COPY on demand. */
export function isLazyVma(v: Vma): boolean {
  return !v.shared && (v.kind === 'anon' || v.kind === 'file-deleted');
}

export function lazyRanges(mm: Mm): Range[] {
  return mm.vmas.filter(isLazyVma).map((v) => ({ start: addr(v.start), end: addr(v.end) }));
}

/** Splits segments into the parts inside the ranges and the parts outside. */
export function splitSegments(segments: Segment[], ranges: Range[]): { inside: Segment[]; outside: Segment[] } {
  const inside: Segment[] = [];
  const outside: Segment[] = [];
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  for (const s of segments) {
    let at = s.start;
    const end = s.start + s.len;
    const piece = (from: number, to: number): Segment => (s.zero ? { start: from, len: to - from, zero: true } : { ...s, start: from, len: to - from, streamOff: s.streamOff + (from - s.start) });
    for (const r of sorted) {
      if (r.end <= at || r.start >= end) continue;
      if (r.start > at) outside.push(piece(at, r.start));
      const e = Math.min(end, r.end);
      inside.push(piece(Math.max(at, r.start), e));
      at = e;
    }
    if (at < end) outside.push(piece(at, end));
  }
  return { inside, outside };
}

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
  const pieces = inside.flatMap((s) => (s.zero ? [] : [{ addr: s.start, pages: s.len / 4096, set: s.set, streamOff: s.streamOff }]));
  return { fd, pending: new Pending(pieces, ranges) };
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
