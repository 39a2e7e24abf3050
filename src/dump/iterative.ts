// `criu-ts dump --iterative`: the pre-dump loop run by us instead of a script.
//
//   DIR/pre-1 ─► DIR/pre-2 ─► ... ─► DIR/pre-N      (pre-dump passes, the process runs)
//   DIR (the final dump, parent `pre-N`)             (frozen: only what changed since pre-N)
//
// After each pass from the second on, we predict the final dump's memory downtime: the pages
// it would save (those written since the last pass's scan) over the copy rate measured in the
// passes. The loop stops when that fits the budget, when the prediction stops shrinking (the
// process dirties memory as fast as we copy it: more passes only cost time), or after
// --max-passes. The prediction leaves out the fixed part of a freeze (registers, files: a few
// ms); the result shows the real frozen time next to it.
import { join } from 'node:path';
import { createImageDir } from '../images/io.js';
import type { Logger } from '../log.js';
import type { DumpOptions, Stats } from './context.js';
import { timer } from './context.js';
import { dump, type DumpResult } from './dump.js';
import { preDump } from './predump.js';
import { loadImageSet } from '../images/imageset.js';
import { endAllTracking } from './tracking.js';

export interface IterativeOptions extends Omit<DumpOptions, 'prevImagesDir'> {
  /** Pre-dump passes at most (the final dump comes on top). */
  maxPasses?: number;
  /** Memory downtime budget of the final dump, in ms. */
  maxDowntimeMs?: number;
}

export const DEFAULT_MAX_PASSES = 8;
export const DEFAULT_MAX_DOWNTIME_MS = 100;
/** Copy rate assumed before any pass has copied enough to measure one (bytes/ms = 1 GB/s). */
const FALLBACK_BYTES_PER_MS = 1e6;
/** A pass copying less than this gives no useful rate (timer noise dominates). */
const MIN_RATE_BYTES = 4 << 20;

export type StopReason = 'fits' | 'not-shrinking' | 'max-passes';

export interface PassReport {
  pass: number;
  /** Relative to the final set's directory. */
  dir: string;
  /** Around the pre-dump call. */
  wallMs: number;
  /** Pages written since the previous pass (0 for the first: it saves everything). */
  pagesWritten: number;
  pagesSaved: number;
  /** Written pages per second since the previous pass started. */
  dirtyPagesPerSec: number;
  /** Copy rate over all passes so far (bytes/ms, i.e. MB/s / 1000 = GB/s). */
  copyBytesPerMs: number;
  /** Predicted memory downtime of a final dump right after this pass (none after the first). */
  estimatedDowntimeMs?: number;
  stats: Stats;
  notes: string[];
}

export interface IterativeResult {
  pid: number;
  imagesDir: string;
  passes: PassReport[];
  stopReason: StopReason;
  maxPasses: number;
  maxDowntimeMs: number;
  final: DumpResult;
}

export const passDir = (k: number) => `pre-${k}`;

/**
 * The final dump's dirty set, predicted from this pass: the rate measured over the last
 * interval, over the time the final freeze will come after this pass's scan (about this
 * pass's own duration). Capped at the set actually seen: random writes over a working set
 * saturate, a shorter interval never dirties more distinct pages than a longer one did.
 */
export function predictDirtyPages(pagesWritten: number, intervalMs: number, passMs: number): number {
  if (intervalMs <= 0) return pagesWritten;
  return Math.min(pagesWritten, (pagesWritten / intervalMs) * passMs);
}

/** Two passes in a row without the prediction shrinking by a tenth: the loop does not converge. */
export function stalled(estimates: number[]): boolean {
  const n = estimates.length;
  if (n < 3) return false;
  const [a, b, c] = estimates.slice(-3) as [number, number, number];
  return b > 0.9 * a && c > 0.9 * b;
}

export async function dumpIterative(
  opts: IterativeOptions,
  log: Logger,
  progress: (line: string) => void = () => {},
  fault?: string,
): Promise<IterativeResult> {
  const maxPasses = opts.maxPasses ?? DEFAULT_MAX_PASSES;
  const maxDowntimeMs = opts.maxDowntimeMs ?? DEFAULT_MAX_DOWNTIME_MS;
  const dir = opts.imagesDir;
  createImageDir(dir);
  const passes: PassReport[] = [];
  const estimates: number[] = [];
  let copiedBytes = 0;
  let copyMs = 0;
  let prevStart: number | undefined;
  let stopReason: StopReason = 'max-passes';
  const t0 = timer();
  try {
    for (let k = 1; k <= maxPasses; k++) {
      // The WP scan that fixes a pass's written set runs right at its start: the time between
      // two starts is the interval that set was written in.
      const startedAt = t0();
      const wall = timer();
      const r = await preDump(
        {
          pid: opts.pid,
          imagesDir: join(dir, passDir(k)),
          ...(k > 1 ? { prevImagesDir: `../${passDir(k - 1)}` } : {}),
          compressionLevel: opts.compressionLevel,
          compressThreads: opts.compressThreads,
          signal: opts.signal,
          onProgress: opts.onProgress,
        },
        log,
        fault,
      );
      const wallMs = wall();
      const s = r.stats;
      if ((s.bytesRaw ?? 0) > 0 && (s.pagesMs ?? 0) > 0) {
        copiedBytes += s.bytesRaw!;
        copyMs += s.pagesMs!;
      }
      const rate = copiedBytes >= MIN_RATE_BYTES && copyMs > 0 ? copiedBytes / copyMs : FALLBACK_BYTES_PER_MS;
      const intervalMs = prevStart === undefined ? 0 : startedAt - prevStart;
      prevStart = startedAt;
      // A pass that started tracking afresh saved everything: it measures no dirty set.
      const measured = k > 1 && !r.trackingStarted;
      const written = s.pagesWritten ?? 0;
      const report: PassReport = {
        pass: k,
        dir: passDir(k),
        wallMs,
        pagesWritten: written,
        pagesSaved: s.pagesSaved ?? 0,
        dirtyPagesPerSec: measured && intervalMs > 0 ? written / (intervalMs / 1000) : 0,
        copyBytesPerMs: rate,
        stats: s,
        notes: r.notes,
      };
      if (measured) {
        report.estimatedDowntimeMs = (predictDirtyPages(written, intervalMs, wallMs) * 4096) / rate;
        estimates.push(report.estimatedDowntimeMs);
      }
      passes.push(report);
      progress(passLine(report, maxDowntimeMs));
      if (report.estimatedDowntimeMs !== undefined && report.estimatedDowntimeMs <= maxDowntimeMs) {
        stopReason = 'fits';
        break;
      }
      if (stalled(estimates)) {
        stopReason = 'not-shrinking';
        break;
      }
    }
  } catch (e) {
    // The loop is ours, not the user's: a failed pass ends the chain's tracking, so the
    // process is left as it was (no tracker, no write protection).
    await endChain(dir, passes, log);
    throw e;
  }
  const last = passes[passes.length - 1]!;
  progress(`final dump after ${passes.length} pass${passes.length === 1 ? '' : 'es'} (${stopText(stopReason, maxDowntimeMs)})`);
  let final: DumpResult;
  try {
    final = await dump({ ...opts, imagesDir: dir, prevImagesDir: last.dir, trackMem: true }, log, fault);
  } catch (e) {
    await endChain(dir, passes, log);
    throw e;
  }
  return { pid: opts.pid, imagesDir: dir, passes, stopReason, maxPasses, maxDowntimeMs, final };
}

async function endChain(dir: string, passes: PassReport[], log: Logger): Promise<void> {
  const last = passes[passes.length - 1];
  if (!last) return;
  try {
    await endAllTracking(loadImageSet(join(dir, last.dir)).inventory.tracking);
    log.warn(`the iterative dump failed: write tracking of the process was ended`);
  } catch (e) {
    log.warn(`could not end the write tracking of ${join(dir, last.dir)}: ${(e as Error).message}`);
  }
}

function stopText(reason: StopReason, budgetMs: number): string {
  switch (reason) {
    case 'fits':
      return `the dirty set fits the ${budgetMs} ms budget`;
    case 'not-shrinking':
      return 'the dirty set stopped shrinking';
    case 'max-passes':
      return 'maximum number of passes';
  }
}

const mib = (pages: number) => ((pages * 4096) / 1048576).toFixed(1);

export function passLine(p: PassReport, budgetMs: number): string {
  const est = p.estimatedDowntimeMs === undefined ? 'no estimate yet' : `final dump estimate ${p.estimatedDowntimeMs.toFixed(1)} ms (budget ${budgetMs} ms)`;
  return (
    `pass ${p.pass}: ${p.pagesWritten} pages written, ${p.pagesSaved} saved (${mib(p.pagesSaved)} MiB) in ${p.wallMs.toFixed(0)} ms, ` +
    `dirty ${mib(p.dirtyPagesPerSec)} MiB/s, copy ${(p.copyBytesPerMs / 1e6).toFixed(2)} GB/s, ${est}`
  );
}
