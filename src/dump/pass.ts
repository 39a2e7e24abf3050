// One memory pass of one process into one set: plan (scan, register, arm), copy, write.
import type { DeferredSyncs } from '../images/io.js';
import type { CompressPool } from '../images/compress-pool.js';
import type { Vma } from '../images/mm.js';
import { PagesWriter } from '../images/pages.js';
import type { Logger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import { copyPages } from './memory.js';
import { planPass, type ParentPages, type PassPlan, type Tracking } from './plan.js';

export interface PassStats {
  pagesScanned: number;
  pagesWritten: number;
  pagesSaved: number;
  pagesInParent: number;
  bytesRaw: number;
  bytesStored: number;
  bytesVanished: number;
  frames: number;
}

export interface PassInput {
  pid: number;
  vmas: Vma[];
  tracking?: Tracking;
  parent?: ParentPages;
  dir: string;
  pool: CompressPool;
  log: Logger;
  /** Told how much of the planned data has been copied (phase 'pages'). */
  progress?: ProgressFn;
  /** A writer made ahead (see PagesWriter.reserve); else copyPlanned makes one. */
  writer?: PagesWriter;
}

export function plan(i: PassInput): Promise<PassPlan> {
  return planPass(i.pid, i.vmas, i.tracking, i.parent, i.log);
}

/** Copies what the plan says into pages-PID.zst / pagemap-PID.bin. */
export async function copyPlanned(i: PassInput, p: PassPlan, frozen: boolean): Promise<PassStats> {
  const c = await copyPlannedDeferred(i, p, frozen);
  await c.complete();
  return c.stats;
}

export interface CopiedPass {
  stats: PassStats;
  /** Writes the index and waits for the pages file to reach the disk (the writer is closed either way); see PagesWriter.complete. */
  complete: (syncs?: DeferredSyncs) => Promise<void>;
  /** Closes the writer of a pass that will not complete. */
  abort: () => void;
}

/** copyPlanned with its last step, the fsync and the index, left to the caller (see PagesWriter.writeFrames). */
export async function copyPlannedDeferred(i: PassInput, p: PassPlan, frozen: boolean): Promise<CopiedPass> {
  const writer = i.writer ?? new PagesWriter(i.dir, i.pid, i.pool);
  try {
    const total = p.items.reduce((n, x) => n + (x.kind === 'data' ? x.end - x.start : 0), 0);
    const onCopied = i.progress && ((done: number) => i.progress!({ phase: 'pages', bytesDone: done, bytesTotal: total }));
    const copied = await copyPages(i.pid, p.items, writer, frozen, onCopied);
    const ws = await writer.writeFrames();
    const stats: PassStats = {
      pagesScanned: p.pagesScanned,
      pagesWritten: p.pagesWritten,
      pagesSaved: ws.rawBytes / 4096,
      pagesInParent: p.items.filter((x) => x.kind === 'parent').reduce((n, x) => n + (x.end - x.start) / 4096, 0),
      bytesRaw: ws.rawBytes,
      bytesStored: ws.storedBytes,
      bytesVanished: copied.bytesVanished,
      frames: ws.frames,
    };
    return { stats, complete: (syncs) => writer.complete(syncs), abort: () => writer.abort() };
  } catch (e) {
    writer.abort();
    throw e;
  }
}
