// PAGEMAP_SCAN as a loop over bounded batches, returning merged page ranges.
//
// The kernel fills at most vec_len regions per call and reports where it stopped in
// walk_end. That walk_end can be stale after an internal buffer refill (a restart from it
// may report regions twice), so we restart from the end of the last region we received,
// and a call that returns fewer regions than vec_len has reached `end`.
import { openSync, closeSync } from 'node:fs';
import { native } from './native.js';
import { USER_ADDR_END } from './syscalls.js';
import type { PagemapScanArgs } from './native-api.js';

export interface PageRange {
  start: number;
  end: number;
  categories: number;
}

export interface ScanOptions {
  start?: number;
  end?: number;
  flags?: number;
  categoryInverted?: number;
  categoryMask?: number;
  categoryAnyofMask?: number;
  returnMask: number;
  /** Regions per ioctl (bounds the memory of one call). */
  batch?: number;
  /**
   * The ioctl's region buffer (batch = its length / 24), reused across scans: a fresh one
   * per scan is fresh memory, and on this VM 96 KiB of it costs 0.15-0.3 ms to fault in.
   * Not to be shared by two scans at once.
   */
  vec?: Buffer;
}

/** A region buffer for ScanOptions.vec, touched (zero-filled) now. */
export function scanBuffer(batch = 4096): Buffer {
  return Buffer.alloc(batch * REGION);
}

const REGION = 24;

export function openPagemap(pid: number): number {
  return openSync(`/proc/${pid}/pagemap`, 'r');
}

/** One scan's batches: the arguments of each ioctl in turn, and the regions merged from their answers. */
class ScanLoop {
  readonly vec: Buffer;
  readonly out: PageRange[] = [];
  private readonly w: Uint32Array;
  private readonly batch: number;
  private readonly end: number;
  private start: number;
  private done = false;

  constructor(private readonly o: ScanOptions) {
    this.vec = o.vec ?? scanBuffer(o.batch);
    this.batch = Math.floor(this.vec.length / REGION);
    // Read as 32-bit halves: a dirty set of 100k scattered pages is 100k regions, and BigInt
    // reads cost more than the scan itself (addresses stay below 2^47, exact as doubles).
    this.w = new Uint32Array(this.vec.buffer, this.vec.byteOffset, (this.batch * REGION) / 4);
    this.end = Math.min(o.end ?? USER_ADDR_END, USER_ADDR_END);
    this.start = o.start ?? 0;
  }

  /** The next ioctl's arguments, or null when the range is done. */
  next(): PagemapScanArgs | null {
    if (this.done || this.start >= this.end) return null;
    const o = this.o;
    return {
      start: this.start,
      end: this.end,
      flags: o.flags ?? 0,
      categoryInverted: o.categoryInverted ?? 0,
      categoryMask: o.categoryMask ?? 0,
      categoryAnyofMask: o.categoryAnyofMask ?? 0,
      returnMask: o.returnMask,
    };
  }

  take({ count, walkEnd }: { count: number; walkEnd: number }): void {
    const w = this.w;
    const u64 = (i: number) => w[i]! + w[i + 1]! * 0x1_0000_0000;
    const out = this.out;
    for (let i = 0; i < count; i++) {
      const k = (i * REGION) / 4;
      const r = { start: u64(k), end: u64(k + 2), categories: w[k + 4]! };
      const last = out[out.length - 1];
      // A region reported again after a restart overlaps what we have: keep the new part.
      if (last && r.start < last.end) r.start = last.end;
      if (r.start >= r.end) continue;
      if (last && last.end === r.start && last.categories === r.categories) last.end = r.end;
      else out.push(r);
    }
    if (count < this.batch) {
      this.done = true;
      return;
    }
    const lastEnd = out.length ? out[out.length - 1]!.end : walkEnd;
    this.start = Math.max(lastEnd, this.start + 4096);
  }
}

export function scanFd(fd: number, o: ScanOptions): PageRange[] {
  const l = new ScanLoop(o);
  for (let a = l.next(); a; a = l.next()) l.take(native.pagemapScan(fd, a, l.vec));
  return l.out;
}

/** scanFd on the libuv pool (see pagemapScanAsync). */
export async function scanFdAsync(fd: number, o: ScanOptions): Promise<PageRange[]> {
  const l = new ScanLoop(o);
  for (let a = l.next(); a; a = l.next()) l.take(await native.pagemapScanAsync(fd, a, l.vec));
  return l.out;
}

export function scanPid(pid: number, o: ScanOptions): PageRange[] {
  const fd = openPagemap(pid);
  try {
    return scanFd(fd, o);
  } finally {
    closeSync(fd);
  }
}

export function totalBytes(ranges: PageRange[]): number {
  return ranges.reduce((s, r) => s + (r.end - r.start), 0);
}
