// Which memory a lazy restore fills on demand, and the debt it starts with. Shared by the
// restorer (which registers it) and the lazy-pages server (which pays it).
import type { Segment } from '../images/imageset.js';
import { addr, type Mm, type Vma } from '../images/mm.js';
import { Pending, type Range } from './pending.js';

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

/** The debt: every page with data in the image inside the lazy ranges. */
export function pendingFor(ranges: Range[], inside: Segment[]): Pending {
  const pieces = inside.flatMap((s) => (s.zero ? [] : [{ addr: s.start, pages: s.len / 4096, set: s.set, streamOff: s.streamOff }]));
  return new Pending(pieces, ranges);
}
