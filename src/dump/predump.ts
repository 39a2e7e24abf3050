// `criu-ts pre-dump`: copy memory while the process keeps running, and keep tracking the
// pages it writes so that the next pass (or the final dump) saves only those.
//
//   first pass (or tracking lost): freeze ─► inject a uffd ─► thaw ─► read the layout,
//      REGISTER(WP) every private VMA and arm it (one WP scan) ─► find the present pages
//      ─► copy them while it runs ─► hand the uffd to a tracker process
//   next pass: take the uffd from the tracker ─► WP scan: the written set, re-protected in
//      the same step ─► register and arm new VMAs ─► copy the written pages while it runs
// Pages written during a copy are written after their protection: the next pass has them.
import { randomUUID } from 'node:crypto';
import { closeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import { CompressPool } from '../images/compress-pool.js';
import { createImageDir, syncDir } from '../images/io.js';
import { writeMm } from '../images/mm.js';
import { writePstree } from '../images/pstree.js';
import { readMaps, readSmaps } from '../kernel/procfs.js';
import { listTree } from './tree.js';
import { Remote, findSyscallInsn } from '../kernel/remote.js';
import { newInventory, openParent, writeInventory, type Parent } from './chain.js';
import { classifyVma } from './collect-mm.js';
import { timer, type DumpContext, type Stats } from './context.js';
import { stage } from './dump.js';
import { freezeProcess, thaw, type Frozen } from './freeze.js';
import { copyPlanned, plan, type PassInput } from './pass.js';
import type { PassPlan } from './plan.js';
import { acquireTracking, createTrackingUffd, endAllTracking, recordPass, spawnTracker, type TrackingInfo } from './tracking.js';
import { loadImageSet } from '../images/imageset.js';
import { CriuError } from '../errors.js';

export interface PreDumpOptions {
  pid: number;
  imagesDir: string;
  prevImagesDir?: string;
  /** zstd level for page frames; 0 stores them uncompressed (default 3). */
  compressionLevel?: number;
  compressThreads?: number;
  /** As for dump: checked at each stage boundary. */
  signal?: AbortSignal;
  /** Progress of the page copy (phase 'pages'). */
  onProgress?: ProgressFn;
}

/**
 * What a final dump lends its catch-up pass: the parent it has open, its pool, and the
 * processes whose tracking it holds; only those are passed over (no tracking is started).
 */
export interface CatchUpInput {
  parent: Parent;
  pool: CompressPool;
  pids: ReadonlySet<number>;
}

export interface PreDumpResult {
  pid: number;
  imagesDir: string;
  stats: Stats;
  notes: string[];
  /** Tracking was started afresh in this pass (first pass, or the old one was lost). */
  trackingStarted: boolean;
}

/** `catchUp`: this is a final dump's catch-up pass (see catch-up.ts), not a user's. */
export async function preDump(opts: PreDumpOptions, log: Logger, fault?: string, catchUp?: CatchUpInput): Promise<PreDumpResult> {
  const ctx: DumpContext = { opts: { ...opts }, log, stats: {}, fault };
  const root = opts.pid;
  const dir = opts.imagesDir;
  const total = timer();
  const notes: string[] = [];
  // Known before the scan: the tracker records it as the chain's last pass (see tracking.ts).
  const setId = randomUUID();
  createImageDir(dir);
  const parent: Parent | undefined = catchUp?.parent ?? (opts.prevImagesDir ? await stage(ctx, 'parent', root, () => openParent(dir, opts.prevImagesDir!, root)) : undefined);
  if (parent && !parent.inventory.tracking?.length) notes.push('the parent pass has no write tracking: every page is saved again');
  // The tree as it is now; each process is tracked by a tracker of its own.
  const tree = listTree(root).filter((p) => !catchUp || catchUp.pids.has(p.pid));
  const uffds = new Map<number, number>();
  const fresh = new Map<number, { fd: number; userModeOnly: boolean }>();
  const lost: TrackingInfo[] = [];
  /** The chain's tracking of each process this pass continues. */
  const continued = new Map<number, TrackingInfo>();
  for (const p of tree) {
    const info = parent?.inventory.tracking?.find((t) => t.targetPid === p.pid);
    if (!info) continue;
    const got = acquireTracking(info, p.pid, parent!.inventory.id);
    if ('fd' in got) {
      uffds.set(p.pid, got.fd);
      continued.set(p.pid, info);
    } else {
      notes.push(`write tracking of ${p.pid} was lost (${got.lost}): this pass saves all of it and starts tracking afresh`);
      lost.push(info);
    }
  }
  if (catchUp && lost.length) {
    // The final dump held this tracking a moment ago: whatever took it, this is no pass to make.
    for (const fd of uffds.values()) closeSync(fd);
    throw new CriuError('EAGAIN', notes.join('; '));
  }
  for (const n of notes) log.warn(n);
  // A tracker that is still there (its chain went on past the parent) holds the process's
  // registration: it goes first, or registering afresh would find the VMAs taken (EBUSY).
  await endAllTracking(lost);
  const pool = catchUp?.pool ?? new CompressPool(opts.compressionLevel ?? 3, opts.compressThreads);
  const frozen: Frozen[] = [];
  const trackers: TrackingInfo[] = [];
  try {
    let frozenMs = 0;
    const untracked = tree.filter((p) => !uffds.has(p.pid));
    if (untracked.length) {
      // Start tracking: the only moment processes are stopped in a pre-dump, and only for
      // the injection. Reading the layout, registering and arming (a WP scan of all memory:
      // ~15 ms per GiB) need no stop: a page written before its arming is in the copy that
      // follows it, one written after is in the next pass; a VMA that appears after the
      // layout is read is new to the next pass (saved whole).
      await pool.warm(); // worker start-up before, not during, the freeze
      for (const p of untracked) {
        const frozenAt = timer(); // from the request to stop on, as in dump.ts
        await stage(ctx, 'freeze', p.pid, () => frozen.push(freezeProcess(p.pid, log)));
        // maps, not smaps: smaps walks every page table (~30 ms for 4 GiB), not while it is stopped.
        const maps = readMaps(p.pid);
        const made = await stage(ctx, 'track', p.pid, () => {
          try {
            return createTrackingUffd(new Remote(p.pid, findSyscallInsn(p.pid, maps)), p.pid);
          } catch (e) {
            throw new CriuError('ENOTSUP', `cannot track writes of ${p.pid}: ${(e as Error).message}`, { cause: e });
          }
        });
        fresh.set(p.pid, made);
        uffds.set(p.pid, made.fd);
        if (made.userModeOnly) notes.push(`${p.pid} may not use kernel-mode userfaultfd: tracking in user-mode-only mode`);
        thaw(frozen.pop()!);
        frozenMs = Math.max(frozenMs, frozenAt());
      }
    }
    for (const p of tree) {
      const input: PassInput = {
        pid: p.pid,
        vmas: readSmaps(p.pid).map((m) => classifyVma(p.pid, m)),
        tracking: { fd: uffds.get(p.pid)! },
        parent: fresh.has(p.pid) ? undefined : parent?.pages.get(p.pid),
        dir,
        pool,
        log,
      };
      // This pass is the chain's last from before its scan protects anything: if it fails
      // after that, no pass may continue from the parent any more.
      const info = continued.get(p.pid);
      if (info) recordPass(info, parent!.inventory.id, setId, catchUp ? resolve(dir) : undefined);
      const pl = await stage(ctx, 'plan', p.pid, () => plan(input));
      notes.push(...pl.notes);
      await finishPass(ctx, input, pl);
      writeMm(dir, layoutOf(p.pid, input.vmas));
    }
    writePstree(dir, { processes: tree.map((p) => ({ pid: p.pid, ppid: p.ppid, pgid: p.pgid, sid: p.sid, threads: [p.pid] })) });
    for (const p of tree) {
      const made = fresh.get(p.pid);
      if (made) {
        const info = spawnTracker(made.fd, p.pid, made.userModeOnly, setId);
        trackers.push(info);
        log.debug(`tracker ${info.trackerPid} holds the userfaultfd of ${p.pid}`);
      } else {
        trackers.push(continued.get(p.pid)!);
      }
    }
    // Processes of the chain that are gone: their trackers end (their uffds hold nothing).
    await endAllTracking(parent?.inventory.tracking?.filter((t) => !tree.some((p) => p.pid === t.targetPid)));
    for (const fd of uffds.values()) closeSync(fd);
    uffds.clear();
    ctx.stats.frozenMs = frozenMs;
    ctx.stats.processes = tree.length;
    ctx.stats.totalMs = total();
    if (parent) {
      const sinceParent = Date.now() - Date.parse(parent.inventory.createdAt);
      if (sinceParent > 0) ctx.stats.dirtyPagesPerSec = (ctx.stats.pagesWritten ?? 0) / (sinceParent / 1000);
    }
    const inv = newInventory('pre-dump', root, parent, { shellJob: false, leaveRunning: true, ...(catchUp ? { catchUp: true } : {}) }, ctx.stats, { tracking: trackers, ...(notes.length ? { notes } : {}) }, setId);
    inv.pids = tree.map((p) => p.pid);
    writeInventory(dir, inv);
    syncDir(dir);
    log.info(`pre-dumped pid ${root} to ${dir}: ${ctx.stats.pagesSaved} pages saved in ${total().toFixed(1)} ms (frozen ${frozenMs.toFixed(1)} ms)`);
    return { pid: root, imagesDir: dir, stats: ctx.stats, notes, trackingStarted: fresh.size > 0 };
  } finally {
    for (const f of frozen) thaw(f);
    // Our copies; a failed pass also drops fresh registrations (no tracker took them).
    for (const fd of uffds.values()) closeSync(fd);
    if (!catchUp) await pool.close();
  }
}


async function finishPass(ctx: DumpContext, input: PassInput, p: PassPlan): Promise<void> {
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
  const infos = set.inventory.tracking;
  if (!infos?.length) return { stopped: false, reason: `${imagesDir} has no write tracking` };
  if (set.inventory.rootPid !== pid) throw new CriuError('EINVAL', `${imagesDir} is of process ${set.inventory.rootPid}, not ${pid}`);
  const gone = await endAllTracking(infos);
  log.info(`tracking of ${pid} ended`);
  return gone ? { stopped: true } : { stopped: false, reason: `a tracker of ${infos.map((i) => i.targetPid).join(', ')} did not exit` };
}
