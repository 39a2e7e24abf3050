// One memory pass of one process into one set: plan (scan, register, arm), copy, write.
import type { DeferredSyncs } from '../images/io.js';
import type { CompressPool } from '../images/compress-pool.js';
import type { Vma } from '../images/mm.js';
import { PagesWriter } from '../images/pages.js';
import type { Logger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import { copyPages, ItemStream, type CopyStats } from './memory.js';
import { parentsOf, planPass, type ParentPages, type PassPlan, type ScanBuffers, type Tracking } from './plan.js';

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
  /** Region buffers made ahead for the plan's scans (see planPass); else it makes them. */
  scanBuffers?: ScanBuffers;
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
  /** pagesInParent is known once complete() is done. */
  stats: PassStats;
  /** Writes the index, with the PARENT ranges, and waits for the pages file to reach the disk (the writer is closed either way); see PagesWriter.complete. */
  complete: (syncs?: DeferredSyncs) => Promise<void>;
  /** Closes the writer of a pass that will not complete. */
  abort: () => void;
}

/** A plan under way: its items arrive on the stream, the whole plan once it is done. */
export interface Planning {
  stream: ItemStream;
  done: Promise<PassPlan>;
}

/**
 * Starts planning with the items streamed as they are found (see copyPlannedDeferred). The
 * stream ends with the plan, or fails with its error; `done` is already handled, so a copy
 * that fails first may leave it to settle on its own.
 */
export function planStreamed(i: PassInput): Planning {
  const stream = new ItemStream();
  const done = planPass(i.pid, i.vmas, i.tracking, i.parent, i.log, stream, i.scanBuffers).then(
    (p) => {
      stream.end();
      return p;
    },
    (e: unknown) => {
      stream.fail(e);
      throw e;
    },
  );
  done.catch(() => {});
  return { stream, done };
}

/**
 * copyPlanned with its last step, the fsync and the index, left to the caller (see
 * PagesWriter.writeFrames). From a Planning, the copy starts with the first items found;
 * onPlanned hears the plan once it is complete (and may throw to stop the copy).
 */
export async function copyPlannedDeferred(i: PassInput, p: PassPlan | Planning, frozen: boolean, onPlanned?: (p: PassPlan) => void): Promise<CopiedPass> {
  const writer = i.writer ?? new PagesWriter(i.dir, i.pid, i.pool);
  // A whole plan is a stream that has ended.
  const planning: Planning = 'stream' in p ? p : { stream: ItemStream.of(p.items), done: Promise.resolve(p) };
  let copying: Promise<CopyStats> | undefined;
  try {
    // Until the plan is done, its total is what it has found so far.
    const onCopied = i.progress && ((done: number) => i.progress!({ phase: 'pages', bytesDone: done, bytesTotal: planning.stream.dataBytes }));
    copying = copyPages(i.pid, planning.stream, writer, frozen, onCopied);
    copying.catch(() => {}); // awaited below (after the plan, which fails it too if it fails)
    const plan = await planning.done;
    onPlanned?.(plan);
    const copied = await copying;
    const ws = await writer.writeFrames();
    const stats: PassStats = {
      pagesScanned: plan.pagesScanned,
      pagesWritten: plan.pagesWritten,
      pagesSaved: ws.rawBytes / 4096,
      pagesInParent: 0,
      bytesRaw: ws.rawBytes,
      bytesStored: ws.storedBytes,
      bytesVanished: copied.bytesVanished,
      frames: ws.frames,
    };
    const complete = async (syncs?: DeferredSyncs) => {
      await writer.complete(syncs, () => parentsOf(i.parent, plan.parentSlices));
      stats.pagesInParent = writer.parentPages;
    };
    return { stats, complete, abort: () => writer.abort() };
  } catch (e) {
    // Neither the plan nor the copy is left running behind a failure (the copy ends once the
    // plan's stream has ended or failed), and only then is the writer closed.
    await planning.done.catch(() => {});
    await copying?.catch(() => {});
    writer.abort();
    throw e;
  }
}
