// `criu-ts pre-dump`: copy memory while the process keeps running, and keep tracking the
// pages it writes so that the next pass (or the final dump) saves only those.
//
//   first pass (or tracking lost): freeze ─► inject a uffd ─► thaw ─► read the layout,
//      REGISTER(WP) every private VMA and arm it (one WP scan) ─► find the present pages
//      ─► copy them while it runs ─► hand the uffd to a tracker process
//   next pass: take the uffd from the tracker ─► WP scan: the written set, re-protected in
//      the same step ─► register and arm new VMAs ─► copy the written pages while it runs
// Pages written during a copy are written after their protection: the next pass has them.
import { closeSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import { CompressPool } from '../images/compress-pool.js';
import { createImageDir, syncDir } from '../images/io.js';
import { writeMm } from '../images/mm.js';
import { writePstree } from '../images/pstree.js';
import { readMaps, readSmaps, readStat } from '../kernel/procfs.js';
import { Remote, findSyscallInsn } from '../kernel/remote.js';
import { newInventory, openParent, writeInventory, type Parent } from './chain.js';
import { classifyVma } from './collect-mm.js';
import { timer, type DumpContext, type Stats } from './context.js';
import { stage } from './dump.js';
import { freezeProcess, thaw, type Frozen } from './freeze.js';
import { copyPlanned, plan, type PassInput } from './pass.js';
import { acquireTracking, createTrackingUffd, endTracking, spawnTracker, waitTrackerGone, type TrackingInfo } from './tracking.js';
import { loadImageSet } from '../images/imageset.js';
import { CriuError } from '../errors.js';

export interface PreDumpOptions {
  pid: number;
  imagesDir: string;
  prevImagesDir?: string;
  compressionLevel?: number;
  compressThreads?: number;
  /** As for dump: checked at each stage boundary. */
  signal?: AbortSignal;
  /** Progress of the page copy (phase 'pages'). */
  onProgress?: ProgressFn;
}

export interface PreDumpResult {
  pid: number;
  imagesDir: string;
  stats: Stats;
  notes: string[];
  /** Tracking was started afresh in this pass (first pass, or the old one was lost). */
  trackingStarted: boolean;
}

export async function preDump(opts: PreDumpOptions, log: Logger, fault?: string): Promise<PreDumpResult> {
  const ctx: DumpContext = { opts: { ...opts }, log, stats: {}, fault };
  const pid = opts.pid;
  const dir = opts.imagesDir;
  const total = timer();
  const notes: string[] = [];
  createImageDir(dir);
  const parent: Parent | undefined = opts.prevImagesDir ? await stage(ctx, 'parent', pid, () => openParent(dir, opts.prevImagesDir!, pid)) : undefined;
  let info: TrackingInfo | undefined = parent?.inventory.tracking;
  let uffd: number | undefined;
  let fresh: { fd: number; userModeOnly: boolean } | undefined;
  if (parent && !info) notes.push('the parent pass has no write tracking: every page is saved again');
  if (info) {
    const got = acquireTracking(info, pid);
    if ('fd' in got) uffd = got.fd;
    else {
      notes.push(`write tracking was lost (${got.lost}): this pass saves every page and starts tracking afresh`);
      info = undefined;
    }
  }
  for (const n of notes) log.warn(n);
  const pool = new CompressPool(opts.compressionLevel ?? 3, opts.compressThreads);
  let frozen: Frozen | undefined;
  try {
    let frozenMs = 0;
    if (uffd === undefined) {
      // Start tracking: the only moment the process is stopped in a pre-dump.
      await pool.warm(); // worker start-up before, not during, the freeze
      await stage(ctx, 'freeze', pid, () => (frozen = freezeProcess(pid, log)));
      const frozenAt = timer();
      // maps, not smaps: smaps walks every page table (~30 ms for 4 GiB), not while it is stopped.
      const maps = readMaps(pid);
      fresh = await stage(ctx, 'track', pid, () => {
        try {
          return createTrackingUffd(new Remote(pid, findSyscallInsn(pid, maps)), pid);
        } catch (e) {
          throw new CriuError('ENOTSUP', `cannot track writes of ${pid}: ${(e as Error).message}`, { cause: e });
        }
      });
      uffd = fresh.fd;
      if (fresh.userModeOnly) notes.push('the process may not use kernel-mode userfaultfd: tracking in user-mode-only mode');
      // Reading the layout, registering and arming (a WP scan of all memory: ~15 ms per GiB)
      // need no stop: a page written before its arming is in the copy that follows it, one
      // written after is in the next pass; a VMA that appears after the layout is read is new
      // to the next pass (saved whole). So the stop lasts only for the injection, whatever the size.
      thaw(frozen!);
      frozen = undefined;
      frozenMs = frozenAt();
      const input: PassInput = { pid, vmas: readSmaps(pid).map((m) => classifyVma(pid, m)), tracking: { fd: uffd }, dir, pool, log };
      const p = await stage(ctx, 'plan', pid, () => plan(input));
      notes.push(...p.notes);
      await finishPass(ctx, input, p);
      writeMm(dir, { ...layoutOf(pid, input.vmas) });
    } else {
      const input: PassInput = {
        pid,
        vmas: readSmaps(pid).map((m) => classifyVma(pid, m)),
        tracking: { fd: uffd },
        parent: parent!.pages.get(pid),
        dir,
        pool,
        log,
      };
      const p = await stage(ctx, 'plan', pid, () => plan(input));
      notes.push(...p.notes);
      await finishPass(ctx, input, p);
      writeMm(dir, layoutOf(pid, input.vmas));
    }
    const stat = readStat(pid);
    writePstree(dir, { processes: [{ pid, ppid: Number(stat[4]), pgid: Number(stat[5]), sid: Number(stat[6]), threads: [pid] }] });
    if (fresh) {
      info = spawnTracker(fresh.fd, pid, fresh.userModeOnly);
      log.debug(`tracker ${info.trackerPid} holds the userfaultfd of ${pid}`);
    }
    closeSync(uffd);
    uffd = undefined;
    ctx.stats.frozenMs = frozenMs;
    ctx.stats.totalMs = total();
    if (parent) {
      const sinceParent = Date.now() - Date.parse(parent.inventory.createdAt);
      if (sinceParent > 0) ctx.stats.dirtyPagesPerSec = (ctx.stats.pagesWritten ?? 0) / (sinceParent / 1000);
    }
    writeInventory(dir, newInventory('pre-dump', pid, parent, { shellJob: false, leaveRunning: true }, ctx.stats, { tracking: info, ...(notes.length ? { notes } : {}) }));
    syncDir(dir);
    log.info(`pre-dumped pid ${pid} to ${dir}: ${ctx.stats.pagesSaved} pages saved in ${total().toFixed(1)} ms (frozen ${frozenMs.toFixed(1)} ms)`);
    return { pid, imagesDir: dir, stats: ctx.stats, notes, trackingStarted: !!fresh };
  } catch (e) {
    // A failed first pass must not leave a half-set-up registration behind.
    if (fresh && uffd !== undefined) {
      closeSync(uffd);
      uffd = undefined;
    }
    throw e;
  } finally {
    if (frozen) thaw(frozen);
    if (uffd !== undefined) closeSync(uffd);
    await pool.close();
  }
}

async function finishPass(ctx: DumpContext, input: PassInput, p: ReturnType<typeof plan>): Promise<void> {
  const s = await stage(ctx, 'pages', input.pid, () => copyPlanned({ ...input, progress: ctx.opts.onProgress }, p, false));
  Object.assign(ctx.stats, s);
}

function layoutOf(pid: number, vmas: PassInput['vmas']) {
  // A pre-dump keeps the layout only (to compare the next pass with); mm fields come with the dump.
  const zero = '0x0';
  return {
    pid,
    vmas,
    mmFields: { startCode: zero, endCode: zero, startData: zero, endData: zero, startBrk: zero, brk: zero, startStack: zero, argStart: zero, argEnd: zero, envStart: zero, envEnd: zero },
    auxv: [],
    exe: null,
  };
}

/** `pre-dump --stop`: ends a chain's tracking without a dump. */
export async function stopTracking(imagesDir: string, pid: number, log: Logger): Promise<{ stopped: boolean; reason?: string }> {
  const set = loadImageSet(imagesDir);
  const info = set.inventory.tracking;
  if (!info) return { stopped: false, reason: `${imagesDir} has no write tracking` };
  if (set.inventory.rootPid !== pid) throw new CriuError('EINVAL', `${imagesDir} is of process ${set.inventory.rootPid}, not ${pid}`);
  endTracking(info);
  const gone = await waitTrackerGone(info);
  log.info(`tracking of ${pid} ended`);
  return gone ? { stopped: true } : { stopped: false, reason: `tracker ${info.trackerPid} did not exit` };
}
