// Which pages a pass saves, and which it leaves to its parent set.
//
// Per VMA of this pass:
//  - tracked since the parent pass (same VMA, registered, no EPERM from the checked scan):
//    the written set W comes from PAGEMAP_SCAN(WP_MATCHING | CHECK_WPASYNC, WRITTEN), which
//    also protects those pages again in the same step. W's present pages are saved here; the
//    pages the parent has, minus W, stay in the parent (PARENT ranges, worked out once the
//    pages are copied: see parentsOf). A written page that is no longer present
//    (MADV_DONTNEED) is listed nowhere: it reads as fresh memory.
//  - new, changed, or untracked: registered (when tracking), armed by one WP scan, and then
//    every present page is saved. Arming comes before the presence scan: a page written
//    after arming is caught by the next pass, one written before is present now.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { addr, type Vma } from '../images/mm.js';
import { PAGE, firstSpanAfter, spansOf, type PagemapIndex } from '../images/pagemap.js';
import { hasCode } from '../kernel/native.js';
import { openPagemap, scanBuffer, scanFd, scanFdAsync, type PageRange } from '../kernel/pagemap.js';
import { PAGE_IS, PM_SCAN } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import { registerWp } from './tracking.js';
import type { ItemStream } from './memory.js';
import { CriuError } from '../errors.js';

export type SaveRule = 'skip' | 'anon' | 'cow' | 'whole';

/** What to save of a VMA: the page data that a fresh mapping at restore would not have. */
export function saveRule(v: Vma, pid = -1): SaveRule {
  switch (v.kind) {
    case 'vdso':
    case 'vvar':
    case 'vvar_vclock':
    case 'vsyscall':
      return 'skip'; // the kernel's own, moved into place at restore
    case 'file':
      // Shared file pages live in the file; private ones only where written (COW).
      return v.shared ? 'skip' : 'cow';
    case 'file-deleted':
      return 'whole';
    case 'anon':
      // Shared memory: its pages live in one object, saved once, whole (a page of it that
      // this process never touched is not in its page tables, but it is in the object).
      if (v.shm) return v.shm.owner === pid ? 'whole' : 'skip';
      return 'anon';
  }
}

/** Private memory can be write-tracked; shared memory is saved whole on every pass. */
const trackable = (v: Vma) => !v.shared && saveRule(v) !== 'skip';

/** Pages to copy. */
export interface Item {
  start: number;
  end: number;
  /** Readable with process_vm_readv (PROT_READ); else /proc/PID/mem. */
  readable: boolean;
}

/** Part of a continuing VMA: the parent keeps its pages there but for those written since. */
export interface ParentSlice {
  start: number;
  end: number;
  /** As the written-pages scan gave them (present or not). */
  written: PageRange[];
}

export interface PassPlan {
  items: Item[];
  /**
   * Where the parent set keeps pages, in address order, made into PARENT ranges by parentsOf
   * once the pages are copied: a final dump is then running again (or waiting for the disk).
   * Done while frozen, that range arithmetic (a few objects per written page) was about a
   * third of its freeze (4 GiB at 1 %/s: 7.2 against 4.9 ms per thousand pages).
   */
  parentSlices: ParentSlice[];
  pagesScanned: number;
  pagesWritten: number;
  /** VMAs that could not be tracked, with why (shown to the user, kept in the inventory). */
  notes: string[];
}

export interface Tracking {
  fd: number;
  /**
   * The chain ends with this pass (a final dump): the written pages are found without being
   * protected again, and nothing new is registered or armed. Protecting costs the walk about
   * as much again, makes the copy that follows read each page slower, and would be undone by
   * the end of tracking anyway; and a final dump that fails leaves the chain as it was (or as
   * its catch-up passes left it, see catch-up.ts).
   */
  final?: boolean;
}

/** smaps shows a WP-registered VMA with VmFlags `uw`: the kernel's own record, kept across passes. */
const registered = (v: Vma) => v.vmFlags.includes('uw');

export interface ParentPages {
  vmas: Vma[];
  index: PagemapIndex;
}

const sameVma = (a: Vma, b: Vma) =>
  a.start === b.start && a.end === b.end && a.prot === b.prot && a.shared === b.shared && a.kind === b.kind && a.name === b.name && a.offset === b.offset;

// Zero-page mappings read as zero anyway; page-cache pages of a private file mapping come
// back from the file. Everything else present or swapped is data.
const excluded = (rule: SaveRule) => PAGE_IS.PFNZERO | (rule === 'cow' ? PAGE_IS.FILE : 0);
const holding = (swap: boolean) => PAGE_IS.PRESENT | (swap ? PAGE_IS.SWAPPED : 0);

function presence(rule: SaveRule, swap: boolean) {
  const exclude = excluded(rule);
  return { categoryInverted: exclude, categoryMask: exclude, categoryAnyofMask: holding(swap), returnMask: PAGE_IS.PRESENT | PAGE_IS.SWAPPED };
}

/**
 * What a written-pages scan returns: enough for dataOf to decide on each range. FILE only
 * where the rule asks for it: the kernel looks up each present page's struct page to tell
 * FILE (a cache miss a page: a 4 GiB anonymous VMA with 85k written ranges scanned in 40 ms
 * instead of 19), and a private anonymous VMA holds no page-cache pages anyway.
 */
const writtenReturn = (rule: SaveRule) => PAGE_IS.WRITTEN | PAGE_IS.PRESENT | PAGE_IS.SWAPPED | PAGE_IS.PFNZERO | (rule === 'cow' ? PAGE_IS.FILE : 0);

/** The ranges of a scan that hold data by presence()'s rule, adjacent ones of a kind merged. */
function dataOf(ranges: PageRange[], rule: SaveRule, swap: boolean): PageRange[] {
  const exclude = excluded(rule);
  const hold = holding(swap);
  const out: PageRange[] = [];
  for (const r of ranges) {
    if (r.categories & exclude || !(r.categories & hold)) continue;
    const last = out[out.length - 1];
    const categories = r.categories & (PAGE_IS.PRESENT | PAGE_IS.SWAPPED);
    // Present and swapped stay apart: realSwapped tells a range's kind by its categories.
    if (last && last.end === r.start && last.categories === categories) last.end = r.end;
    else out.push({ start: r.start, end: r.end, categories });
  }
  return out;
}

/**
 * PAGEMAP_SCAN counts uffd-wp markers (what write tracking leaves in holes and in pages
 * dropped by MADV_DONTNEED) as PAGE_IS_SWAPPED. Without swap, nothing real is swapped, so
 * only present pages count. With swap, a SWAPPED page is real when /proc/PID/pagemap gives
 * it the type of an active swap device (markers carry a type above them).
 */
export function swapDevices(): number {
  try {
    return readFileSync('/proc/swaps', 'utf8').trim().split('\n').length - 1;
  } catch {
    return 0;
  }
}

function realSwapped(pid: number, ranges: PageRange[], devices: number): PageRange[] {
  const out: PageRange[] = [];
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    for (const r of ranges) {
      if (r.categories & PAGE_IS.PRESENT) {
        out.push(r);
        continue;
      }
      const n = (r.end - r.start) / PAGE;
      const buf = Buffer.alloc(n * 8);
      readSync(fd, buf, 0, buf.length, (r.start / PAGE) * 8);
      for (let i = 0; i < n; i++) {
        const e = buf.readBigUInt64LE(i * 8);
        const isSwap = (e >> 62n) & 1n;
        if (isSwap && Number(e & 0x1fn) < devices) out.push({ start: r.start + i * PAGE, end: r.start + (i + 1) * PAGE, categories: PAGE_IS.SWAPPED });
      }
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Ranges of a minus ranges of b (both sorted, disjoint). */
export function subtract(a: Array<{ start: number; end: number }>, b: Array<{ start: number; end: number }>): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  let j = 0;
  for (const r of a) {
    let s = r.start;
    while (j < b.length && b[j]!.end <= s) j++;
    let k = j;
    while (s < r.end) {
      const cut = b[k];
      if (!cut || cut.start >= r.end) {
        out.push({ start: s, end: r.end });
        break;
      }
      if (cut.start > s) out.push({ start: s, end: cut.start });
      s = Math.max(s, cut.end);
      k++;
    }
  }
  return out;
}

/** Sorted, disjoint ranges as typed arrays. */
interface Coverage {
  start: Float64Array;
  end: Float64Array;
}

const coverages = new WeakMap<PagemapIndex, Coverage>();

/**
 * The pages a parent set can give, adjacent ranges merged: its index alternates DATA and
 * PARENT at every page its pass saved (tens of thousands of ranges for scattered writes),
 * while what it covers is a few ranges per VMA. Made once per index (a final dump has it
 * made before the freeze), so that a pass's PARENT ranges cost what it wrote, not what the
 * parent holds. Every kind of range (data, parent, zero) gives its pages; decoding refuses
 * any other.
 */
export function parentCoverage(parent: ParentPages): Coverage {
  let c = coverages.get(parent.index);
  if (c) return c;
  // Typed arrays: a decoded index makes no range objects unless something else asks.
  const spans = spansOf(parent.index);
  const start: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < spans.start.length; i++) {
    if (end.length && end[end.length - 1] === spans.start[i]) end[end.length - 1] = spans.end[i]!;
    else {
      start.push(spans.start[i]!);
      end.push(spans.end[i]!);
    }
  }
  c = { start: Float64Array.from(start), end: Float64Array.from(end) };
  coverages.set(parent.index, c);
  return c;
}

/** The parent's ranges (pages it can give) within [start, end), adjacent ones merged. */
export function parentRanges(parent: ParentPages, start: number, end: number): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  const c = parentCoverage(parent);
  for (let i = firstSpanAfter(c, start); i < c.start.length && c.start[i]! < end; i++) {
    out.push({ start: Math.max(start, c.start[i]!), end: Math.min(end, c.end[i]!) });
  }
  return out;
}

/** The PARENT ranges of a plan's parent slices (adjacent ones merged): the parent's pages there minus those written. */
export function parentsOf(parent: ParentPages | undefined, slices: ParentSlice[]): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  if (!parent) return out;
  for (const sl of slices) {
    for (const r of subtract(parentRanges(parent, sl.start, sl.end), sl.written)) {
      const last = out[out.length - 1];
      if (last && last.end === r.start) last.end = r.end;
      else out.push(r);
    }
  }
  return out;
}

/**
 * Bytes written since the last pass in the tracked memory of pid, as of now (the process
 * runs on): what a final dump about to freeze it should expect to save, at least. One scan
 * without write-protecting anything; untracked VMAs (not WPALLOWED) are left out.
 */
export function writtenSoFar(pid: number): number {
  const fd = openPagemap(pid);
  try {
    const mask = PAGE_IS.WRITTEN | PAGE_IS.WPALLOWED;
    return scanFd(fd, { categoryMask: mask, returnMask: mask }).reduce((n, r) => n + (r.end - r.start), 0);
  } finally {
    closeSync(fd);
  }
}

/** A VMA's written pages are scanned in slices of this size, two at a time (one per core). */
const SCAN_SLICE = 128 << 20;

/**
 * The written pages of [start, end) (see writtenReturn), write-protected again in the same
 * walk if `protect`, slice by slice, two scans at once: the walk visits every page-table
 * entry, and in a final dump it is most of what does not shrink with the dirty set. Each
 * slice's ranges go to onSlice in address order as soon as it and those before it are done.
 * CHECK_WPASYNC either way: an unregistered VMA fails with EPERM.
 */
async function writtenIn(fd: number, start: number, end: number, rule: SaveRule, protect: boolean, bufs: ScanBuffers, onSlice: (written: PageRange[], s: number, e: number) => void): Promise<void> {
  const flags = PM_SCAN.CHECK_WPASYNC | (protect ? PM_SCAN.WP_MATCHING : 0);
  const bounds: Array<[number, number]> = [];
  for (let s = start; s < end; s += SCAN_SLICE) bounds.push([s, Math.min(end, s + SCAN_SLICE)]);
  const started: Array<Promise<PageRange[]>> = [];
  const scan = (k: number) => {
    if (k >= bounds.length || k < started.length) return; // started in order: 0, 1, then k + 2
    const [s, e] = bounds[k]!;
    // Two in flight, each on its buffer: scan k + 2 starts once scan k is done with it.
    started[k] = scanFdAsync(fd, { start: s, end: e, flags, categoryMask: PAGE_IS.WRITTEN, returnMask: writtenReturn(rule), vec: bufs[k % 2] });
    started[k]!.catch(() => {}); // awaited below, or settled before we throw
  };
  try {
    scan(0);
    scan(1);
    for (let k = 0; k < bounds.length; k++) {
      const written = await started[k]!;
      scan(k + 2);
      onSlice(written, bounds[k]![0], bounds[k]![1]);
    }
  } finally {
    // Every scan settles before we return or throw: the caller closes the fd they scan through.
    await Promise.allSettled(started);
  }
}

/** The two region buffers a pass's scans reuse (see ScanOptions.vec): two scans run at once. */
export type ScanBuffers = [Buffer, Buffer];

/** Scan buffers touched now: a final dump makes them before it freezes the process. */
export const scanBuffers = (): ScanBuffers => [scanBuffer(), scanBuffer()];

/**
 * The plan of one pass. With a sink, its items also go there as they are found, in address
 * order (the copy takes them from it while the rest is scanned).
 */
export async function planPass(pid: number, vmas: Vma[], tracking: Tracking | undefined, parent: ParentPages | undefined, log: Logger, sink?: ItemStream, bufs: ScanBuffers = scanBuffers()): Promise<PassPlan> {
  const fd = openPagemap(pid);
  const plan: PassPlan = { items: [], parentSlices: [], pagesScanned: 0, pagesWritten: 0, notes: [] };
  let sent = 0;
  const send = () => {
    if (!sink || plan.items.length === sent) return;
    sink.push(plan.items.slice(sent));
    sent = plan.items.length;
  };
  const devices = swapDevices();
  const present = (v: Vma, s: number, e: number): PageRange[] => {
    const found = scanFd(fd, { start: s, end: e, ...presence(saveRule(v), devices > 0), vec: bufs[0] });
    return devices > 0 ? realSwapped(pid, found, devices) : found;
  };
  const wpScan = (s: number, e: number): PageRange[] =>
    scanFd(fd, {
      start: s,
      end: e,
      flags: PM_SCAN.WP_MATCHING | PM_SCAN.CHECK_WPASYNC,
      categoryMask: PAGE_IS.WRITTEN,
      returnMask: PAGE_IS.WRITTEN,
      vec: bufs[0],
    });
  try {
    for (const v of vmas) {
      send();
      const rule = saveRule(v, pid);
      if (rule === 'skip') continue;
      const start = addr(v.start);
      const end = addr(v.end);
      const readable = (v.prot & 1) !== 0;
      const data = (rs: Array<{ start: number; end: number }>) => rs.forEach((r) => plan.items.push({ start: r.start, end: r.end, readable }));
      if (rule === 'whole') {
        data([{ start, end }]);
        continue;
      }
      // A final dump reads the layout from maps (no VmFlags yet, see dump.ts): its checked
      // scan's EPERM is what tells an unregistered VMA.
      let isRegistered = registered(v);
      const continuing = tracking && parent && trackable(v) && (isRegistered || tracking.final) && parent.vmas.some((p) => sameVma(p, v));
      if (continuing) {
        // One walk finds (and but for a final dump protects again) and classifies the written
        // pages (a second, presence walk over a GiB-sized VMA costs as much again, and the
        // final dump does this while frozen). Slice by slice, streamed to the copy if it
        // already runs (sink).
        const mark = plan.items.length;
        const sliceMark = plan.parentSlices.length;
        let scanned = 0;
        let writtenPages = 0;
        try {
          await writtenIn(fd, start, end, rule, !tracking.final, bufs, (written, s, e) => {
            scanned += (e - s) / PAGE;
            writtenPages += written.reduce((n, r) => n + (r.end - r.start) / PAGE, 0);
            const held = dataOf(written, rule, devices > 0);
            data(devices > 0 ? realSwapped(pid, held, devices) : held);
            plan.parentSlices.push({ start: s, end: e, written });
            send();
          });
          plan.pagesScanned += scanned;
          plan.pagesWritten += writtenPages;
          continue;
        } catch (e) {
          // EPERM: this VMA is no longer registered (remapped in place, ...): start it afresh,
          // unless part of it already went to the copy (only if it changed under the scan).
          if (!hasCode(e, 'EPERM')) throw e;
          if (sent > mark) throw new CriuError('EAGAIN', `pid ${pid}: VMA ${v.start}-${v.end} lost its registration while it was being scanned`);
          plan.items.length = mark;
          plan.parentSlices.length = sliceMark;
          plan.notes.push(`VMA ${v.start}-${v.end} ${v.name} lost its registration; saved whole`);
          isRegistered = false;
        }
      }
      if (tracking && !tracking.final && trackable(v)) {
        const how = isRegistered ? 'ok' : registerWp(tracking.fd, start, end);
        if (how === 'ok') {
          try {
            wpScan(start, end); // arm: protect every page from now on
          } catch (e) {
            if (!hasCode(e, 'EPERM')) throw e;
            plan.notes.push(`VMA ${v.start}-${v.end} ${v.name} could not be armed; saved whole each pass`);
          }
        } else {
          const why = how === 'busy' ? 'the process uses userfaultfd there itself' : 'the kernel refused to track it';
          plan.notes.push(`VMA ${v.start}-${v.end} ${v.name}: ${why}; saved whole each pass`);
        }
      }
      plan.pagesScanned += (end - start) / PAGE;
      data(present(v, start, end));
    }
  } finally {
    closeSync(fd);
  }
  // VMAs come in address order, and so do their items; sort only if a caller's did not
  // (a sink takes them in order: the writer refuses any other).
  if (!sink && plan.items.some((it, i) => i > 0 && it.start < plan.items[i - 1]!.start)) plan.items.sort((a, b) => a.start - b.start);
  send();
  for (const n of plan.notes) log.warn(`pid ${pid}: ${n}`);
  return plan;
}
