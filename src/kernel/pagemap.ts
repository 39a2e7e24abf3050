// PAGEMAP_SCAN as a loop over bounded batches, returning merged page ranges.
//
// The kernel fills at most vec_len regions per call and reports where it stopped in
// walk_end. That walk_end can be stale after an internal buffer refill (a restart from it
// may report regions twice), so we restart from the end of the last region we received,
// and a call that returns fewer regions than vec_len has reached `end`.
import { openSync, closeSync } from 'node:fs';
import { native } from './native.js';
import { USER_ADDR_END } from './syscalls.js';

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
}

const REGION = 24;

export function openPagemap(pid: number): number {
  return openSync(`/proc/${pid}/pagemap`, 'r');
}

export function scanFd(fd: number, o: ScanOptions): PageRange[] {
  const batch = o.batch ?? 4096;
  const vec = Buffer.alloc(batch * REGION);
  // Read as 32-bit halves: a dirty set of 100k scattered pages is 100k regions, and BigInt
  // reads cost more than the scan itself (addresses stay below 2^47, exact as doubles).
  const w = new Uint32Array(vec.buffer, vec.byteOffset, (batch * REGION) / 4);
  const u64 = (i: number) => w[i]! + w[i + 1]! * 0x1_0000_0000;
  const end = Math.min(o.end ?? USER_ADDR_END, USER_ADDR_END);
  const out: PageRange[] = [];
  let start = o.start ?? 0;
  while (start < end) {
    const { count, walkEnd } = native.pagemapScan(
      fd,
      {
        start,
        end,
        flags: o.flags ?? 0,
        categoryInverted: o.categoryInverted ?? 0,
        categoryMask: o.categoryMask ?? 0,
        categoryAnyofMask: o.categoryAnyofMask ?? 0,
        returnMask: o.returnMask,
      },
      vec,
    );
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
    if (count < batch) break;
    const lastEnd = out.length ? out[out.length - 1]!.end : walkEnd;
    start = Math.max(lastEnd, start + 4096);
  }
  return out;
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
