// What a lazy page server still owes one address space, and the pure decisions around it:
// what to copy for a fault, what to push next, and how events (remap, remove, unmap, fork)
// change the debt. No kernel calls here: src/lazy/server.ts does the I/O.
//
// A piece is a run of pages whose content is in the image (set, stream offset), now at
// `addr` (a remap moves it). Each page is owed until it is filled, or dropped because the
// process unmapped or discarded it (then it must never be filled).

export const PAGE = 4096;
const FILLED = 1;
const DROPPED = 2;

export interface Piece {
  addr: number;
  pages: number;
  /** Which set of the chain holds the data (0: the newest) and where in its page stream. */
  set: number;
  streamOff: number;
  /** Where this piece's pages start in the space's state array. */
  base: number;
  owed: number;
}

export interface CopyOp {
  dst: number;
  len: number;
  set: number;
  streamOff: number;
}

export interface FaultPlan {
  copies: CopyOp[];
  /** Ranges that read as zero (never present when dumped): UFFDIO_ZEROPAGE. */
  zeros: Array<{ start: number; len: number }>;
}

export interface Range {
  start: number;
  end: number;
}

export class Pending {
  /** Sorted by addr, disjoint. */
  pieces: Piece[];
  /** The registered ranges as far as we know them (for zero-filling around a fault). */
  vmas: Range[];
  owed: number;
  /** Push order: pieces by set (newest pass first: its pages are the hottest), then address. */
  private order: Piece[] = [];
  /** Clusters (by start) whose every page has been made present: no zero-fill again. */
  private zeroed = new Set<number>();
  private clusterMax = PAGE;
  private cursor = 0;
  private cursorPage = 0;

  /** Per page of every piece: 0 owed, FILLED, or DROPPED (the process unmapped or discarded it). */
  private state: Uint8Array;

  constructor(pieces: Array<{ addr: number; pages: number; set: number; streamOff: number }>, vmas: Range[]) {
    // One state array for all pieces: tens of thousands of small arrays cost more than the pages.
    let base = 0;
    this.pieces = pieces
      .filter((p) => p.pages > 0)
      .map((p) => {
        const piece = { ...p, base, owed: p.pages };
        base += p.pages;
        return piece;
      })
      .sort((a, b) => a.addr - b.addr);
    this.state = new Uint8Array(base);
    this.vmas = [...vmas].sort((a, b) => a.start - b.start);
    this.owed = this.pieces.reduce((n, p) => n + p.owed, 0);
    this.reorder();
  }

  private reorder(): void {
    this.order = [...this.pieces].sort((a, b) => a.set - b.set || a.addr - b.addr);
    this.cursor = 0;
    this.cursorPage = 0;
  }

  /** Index of the piece containing addr, or of the first piece after it (negative - 1). */
  private find(addr: number): number {
    let lo = 0;
    let hi = this.pieces.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const p = this.pieces[mid]!;
      if (addr < p.addr) hi = mid - 1;
      else if (addr >= p.addr + p.pages * PAGE) lo = mid + 1;
      else return mid;
    }
    return -lo - 1;
  }

  /** Owed pages in [start, end) as copy ops, marked done: the caller fills them now. */
  claim(start: number, end: number): CopyOp[] {
    const out: CopyOp[] = [];
    this.take(start, end, out);
    return out;
  }

  /** Owed pages in [start, end) as copy ops, marking them `as` (filled unless said otherwise). */
  private take(start: number, end: number, out: CopyOp[], as = FILLED): void {
    let i = this.find(start);
    if (i < 0) i = -i - 1;
    for (; i < this.pieces.length; i++) {
      const p = this.pieces[i]!;
      if (p.addr >= end) break;
      const first = Math.max(0, Math.floor((start - p.addr) / PAGE));
      const last = Math.min(p.pages, Math.ceil((end - p.addr) / PAGE));
      let run = -1;
      for (let k = first; k <= last; k++) {
        const owed = k < last && !this.state[p.base + k];
        if (owed && run < 0) run = k;
        if (!owed && run >= 0) {
          out.push({ dst: p.addr + run * PAGE, len: (k - run) * PAGE, set: p.set, streamOff: p.streamOff + run * PAGE });
          run = -1;
        }
        if (owed) {
          this.state[p.base + k] = as;
          p.owed--;
          this.owed--;
        }
      }
    }
  }

  private vmaAt(addr: number): Range | undefined {
    return this.vmas.find((v) => v.start <= addr && addr < v.end);
  }

  /**
   * A fault at addr: the aligned cluster around it (clusterBytes, a power of two), within
   * the VMA: owed pages are copied, the others of the cluster zero-filled (those that are
   * present already are skipped by the kernel with EEXIST).
   */
  fault(addr: number, clusterBytes: number): FaultPlan {
    const page = addr - (addr % PAGE);
    const vma = this.vmaAt(page);
    this.clusterMax = Math.max(this.clusterMax, clusterBytes);
    let start = page - (page % clusterBytes);
    let end = start + clusterBytes;
    if (vma) {
      start = Math.max(start, vma.start);
      end = Math.min(end, vma.end);
    } else {
      // A VMA we do not know the bounds of (grown since): only the page itself.
      start = page;
      end = page + PAGE;
    }
    const copies: CopyOp[] = [];
    this.take(start, end, copies);
    // The rest of the cluster: pages no piece owes (fresh when dumped) and pages the process
    // dropped since read as zero. Pages we filled are skipped. A cluster zero-filled before
    // needs only the faulting page (dropped since, or raced by another thread).
    const zeros: Array<{ start: number; len: number }> = [];
    const key = start - (start % clusterBytes);
    const [zs, ze] = this.zeroed.has(key) ? [page, page + PAGE] : [start, end];
    let run = -1;
    for (let at = zs; at <= ze; at += PAGE) {
      const want = at < ze && this.stateAt(at) !== FILLED;
      if (want && run < 0) run = at;
      if (!want && run >= 0) {
        zeros.push({ start: run, len: at - run });
        run = -1;
      }
    }
    if (vma) this.zeroed.add(key);
    return { copies, zeros };
  }

  /** 0 owed (or no piece: fresh), FILLED or DROPPED. */
  private stateAt(addr: number): number {
    const i = this.find(addr);
    if (i < 0) return 0;
    const p = this.pieces[i]!;
    return this.state[p.base + (addr - p.addr) / PAGE]!;
  }

  /** Gives back ops that could not be done (the mm changed under them): owed again. */
  giveBack(ops: CopyOp[]): void {
    for (const op of ops) {
      let i = this.find(op.dst);
      if (i < 0) continue;
      for (let at = op.dst; at < op.dst + op.len; at += PAGE) {
        let p = this.pieces[i]!;
        if (at >= p.addr + p.pages * PAGE) p = this.pieces[++i]!;
        if (!p || at < p.addr) break;
        const k = (at - p.addr) / PAGE;
        if (this.state[p.base + k]) {
          this.state[p.base + k] = 0;
          p.owed++;
          this.owed++;
        }
      }
    }
    this.reorder();
  }

  /** The next background batch: up to maxBytes of owed pages, hottest first. */
  nextBatch(maxBytes: number): CopyOp[] {
    const out: CopyOp[] = [];
    let budget = Math.max(PAGE, maxBytes);
    while (budget > 0 && this.cursor < this.order.length) {
      const p = this.order[this.cursor]!;
      if (p.owed === 0 || this.cursorPage >= p.pages) {
        this.cursor++;
        this.cursorPage = 0;
        continue;
      }
      const k = this.cursorPage;
      const n = Math.min(p.pages - k, budget / PAGE);
      const before = out.length;
      this.take(p.addr + k * PAGE, p.addr + (k + n) * PAGE, out);
      for (let i = before; i < out.length; i++) budget -= out[i]!.len;
      this.cursorPage = k + n;
      if (out.length === before && n === 0) break;
    }
    return out;
  }

  /** Pages the process dropped (MADV_DONTNEED / REMOVE) or unmapped: never fill them. */
  drop(start: number, end: number, unmapped: boolean): void {
    const sink: CopyOp[] = [];
    this.take(start, end, sink, DROPPED);
    // Filled pages in the range are gone as well: they read as zero if touched again.
    let i = this.find(start);
    if (i < 0) i = -i - 1;
    for (; i < this.pieces.length; i++) {
      const p = this.pieces[i]!;
      if (p.addr >= end) break;
      for (let k = 0; k < p.pages; k++) {
        const at = p.addr + k * PAGE;
        if (at >= start && at < end && this.state[p.base + k] === FILLED) this.state[p.base + k] = DROPPED;
      }
    }
    for (const key of this.zeroed) if (key < end && key + this.clusterMax > start) this.zeroed.delete(key);
    if (unmapped) this.vmas = subtractRanges(this.vmas, start, end);
  }

  /** mremap moved [from, from+len) to [to, to+len): owed pages move with it. */
  remap(from: number, to: number, len: number): void {
    this.split(from);
    this.split(from + len);
    for (const p of this.pieces) if (p.addr >= from && p.addr < from + len) p.addr += to - from;
    this.pieces.sort((a, b) => a.addr - b.addr);
    this.zeroed.clear(); // conservative: a zero-fill again only costs EEXIST
    const moved: Range[] = [];
    const kept: Range[] = [];
    for (const v of this.vmas) {
      const s = Math.max(v.start, from);
      const e = Math.min(v.end, from + len);
      if (e > s) moved.push({ start: s + to - from, end: e + to - from });
    }
    kept.push(...subtractRanges(this.vmas, from, from + len));
    this.vmas = subtractRanges(kept, to, to + len).concat(moved).sort((a, b) => a.start - b.start);
    this.reorder();
  }

  /** Splits the piece containing addr (if any) so that a piece starts at addr. */
  private split(addr: number): void {
    const i = this.find(addr);
    if (i < 0) return;
    const p = this.pieces[i]!;
    const k = (addr - p.addr) / PAGE;
    if (k === 0) return;
    const tail: Piece = { addr, pages: p.pages - k, set: p.set, streamOff: p.streamOff + k * PAGE, base: p.base + k, owed: 0 };
    for (let j = 0; j < tail.pages; j++) if (!this.state[tail.base + j]) tail.owed++;
    p.pages = k;
    p.owed -= tail.owed;
    this.pieces.splice(i + 1, 0, tail);
  }

  /** A fork: the child's mm has the same holes as ours at this moment. */
  clone(): Pending {
    const c = new Pending([], this.vmas);
    c.pieces = this.pieces.map((p) => ({ ...p }));
    c.state = this.state.slice();
    c.owed = this.owed;
    c.reorder();
    return c;
  }
}

export function subtractRanges(ranges: Range[], start: number, end: number): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    if (r.end <= start || r.start >= end) out.push(r);
    else {
      if (r.start < start) out.push({ start: r.start, end: start });
      if (r.end > end) out.push({ start: end, end: r.end });
    }
  }
  return out;
}

/** Small batches right after a fault (keep the fault path quick), large ones when idle. */
export function batchBytes(msSinceFault: number): number {
  if (msSinceFault < 2) return 64 * 1024;
  if (msSinceFault < 20) return 512 * 1024;
  return 4 * 1024 * 1024;
}
