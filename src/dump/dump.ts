// `criu-ts dump`: the stages, in order. Each stage wraps its failure with its name and the
// pid; any failure before the kill detaches and leaves the process running as it was (and
// a pre-dump chain's tracking in place, so the dump can be tried again).
//
//   [parent: check the chain, take the tracking uffd from its tracker]
//   freeze ─► map scratch ─► collect cores, process, mm, files ─► unmap scratch
//          ─► plan pages (written since the parent, or all present) ─► copy, compress, write
//          ─► metadata, fsync ─► inventory (the set is now complete)
//          ─► end tracking ─► kill, or detach (--leave-running)
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { inStage, throwIfAborted } from '../errors.js';
import type { Logger } from '../log.js';
import { CompressPool } from '../images/compress-pool.js';
import { writeCore, type Core } from '../images/core.js';
import { writeFiles } from '../images/files.js';
import { INVENTORY } from '../images/inventory.js';
import { createImageDir, syncDir } from '../images/io.js';
import { writeMm } from '../images/mm.js';
import { writePstree } from '../images/pstree.js';
import { native } from '../kernel/native.js';
import { readSmaps, readStat } from '../kernel/procfs.js';
import { Remote, findSyscallInsn } from '../kernel/remote.js';
import { MAP, PROT, SIG } from '../kernel/syscalls.js';
import { newInventory, openParent, writeInventory, type Parent } from './chain.js';
import { collectProcess, collectThread } from './collect-core.js';
import { collectFiles } from './collect-files.js';
import { collectMm } from './collect-mm.js';
import { faultPoint, timer, type DumpContext, type DumpOptions, type Stats } from './context.js';
import { freezeProcess, thaw, type Frozen } from './freeze.js';
import { copyPlanned, plan } from './pass.js';
import { acquireTracking, endTracking, waitTrackerGone, type TrackingInfo } from './tracking.js';

export interface DumpResult {
  pid: number;
  imagesDir: string;
  stats: Stats;
  killed: boolean;
  notes: string[];
}

export async function stage<T>(ctx: DumpContext, name: string, pid: number, fn: () => T | Promise<T>): Promise<T> {
  const t = timer();
  try {
    throwIfAborted(ctx.opts.signal, name);
    const r = await fn();
    ctx.stats[`${name}Ms`] = (ctx.stats[`${name}Ms`] ?? 0) + t();
    ctx.log.debug(`${name} (pid ${pid}): ${t().toFixed(2)} ms`);
    faultPoint(ctx, name);
    return r;
  } catch (e) {
    throw inStage(name, pid, e);
  }
}

export async function dump(opts: DumpOptions, log: Logger, fault?: string): Promise<DumpResult> {
  const ctx: DumpContext = { opts, log, stats: {}, fault };
  const pid = opts.pid;
  const dir = opts.imagesDir;
  const total = timer();
  const notes: string[] = [];
  createImageDir(dir);
  const parent: Parent | undefined = opts.prevImagesDir ? await stage(ctx, 'parent', pid, () => openParent(dir, opts.prevImagesDir!, pid)) : undefined;
  let trackingInfo: TrackingInfo | undefined = parent?.inventory.tracking;
  let uffd: number | undefined;
  if (trackingInfo) {
    const got = acquireTracking(trackingInfo, pid);
    if ('fd' in got) uffd = got.fd;
    else {
      notes.push(`write tracking was lost (${got.lost}): every page is saved in this dump`);
      log.warn(notes[notes.length - 1]!);
      trackingInfo = undefined;
    }
  }
  const pool = new CompressPool(opts.compressionLevel ?? 3, opts.compressThreads);
  let frozen: Frozen | undefined;
  let done = false;
  let inventoryWritten = false;
  let complete = false;
  try {
    await pool.warm(); // worker start-up before, not during, the freeze
    // Kept as soon as it exists: whatever fails after this point must thaw it.
    const f = await stage(ctx, 'freeze', pid, () => (frozen = freezeProcess(pid, log)));
    const frozenAt = timer();
    // Read the layout before our scratch page exists, so it never enters the image.
    const maps = readSmaps(pid);
    const stat = readStat(pid);
    const remote = new Remote(pid, findSyscallInsn(pid, maps));

    const collected = await stage(ctx, 'collect', pid, () => {
      const scratch = remote.mmap(0, 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
      try {
        const cores: Core[] = f.tids.map((tid) => collectThread(pid, tid, tid === pid ? remote : new Remote(tid, remote.syscallIp), scratch));
        cores[0]!.process = collectProcess(pid, remote, scratch, f.stoppedBy);
        const mm = collectMm(pid, maps, remote);
        return { cores, mm };
      } finally {
        remote.munmap(scratch, 4096);
      }
    });
    const { files, ghostBytes } = await stage(ctx, 'files', pid, () => collectFiles(pid, { shellJob: !!opts.shellJob, dir }));

    await stage(ctx, 'pages', pid, async () => {
      const input = {
        pid,
        vmas: collected.mm.vmas,
        tracking: uffd === undefined ? undefined : { fd: uffd },
        parent: uffd === undefined ? undefined : parent?.pages.get(pid),
        dir,
        pool,
        log,
        progress: opts.onProgress,
      };
      const p = plan(input);
      notes.push(...p.notes);
      faultPoint(ctx, 'mid-pages');
      const s = await copyPlanned(input, p, true);
      Object.assign(ctx.stats, s);
      // Older names, kept for scripts that read them.
      ctx.stats.pagesBytesRaw = s.bytesRaw;
      ctx.stats.pagesBytesStored = s.bytesStored;
    });

    await stage(ctx, 'write', pid, () => {
      for (const c of collected.cores) writeCore(dir, c);
      writeMm(dir, collected.mm);
      writeFiles(dir, files);
      writePstree(dir, {
        processes: [{ pid, ppid: Number(stat[4]), pgid: Number(stat[5]), sid: Number(stat[6]), threads: f.tids, state: f.stoppedBy ? 'stopped' : 'running' }],
      });
      ctx.stats.ghostBytes = ghostBytes;
      ctx.stats.frozenMs = frozenAt();
      ctx.stats.totalMs = total();
      // The inventory goes last: only a set that has one is complete.
      const options = { shellJob: !!opts.shellJob, leaveRunning: !!opts.leaveRunning, trackMem: !!opts.trackMem };
      writeInventory(dir, newInventory('dump', pid, parent, options, ctx.stats, notes.length ? { notes } : {}));
      inventoryWritten = true;
      syncDir(dir);
    });
    faultPoint(ctx, 'before-kill');

    // The chain ends here: no tracker, no registration, no write protection stays behind.
    if (uffd !== undefined) endTracking(trackingInfo, uffd);
    uffd = undefined;
    await waitTrackerGone(trackingInfo);
    complete = true; // from here on the set stands: the process is about to be killed
    if (opts.leaveRunning) thaw(f);
    else killFrozen(f, log);
    done = true;
    log.info(`dumped pid ${pid} to ${dir} in ${total().toFixed(1)} ms (frozen ${ctx.stats.frozenMs!.toFixed(1)} ms)`);
    return { pid, imagesDir: dir, stats: ctx.stats, killed: !opts.leaveRunning, notes };
  } finally {
    await pool.close();
    if (uffd !== undefined) endTracking(undefined, uffd); // our copy only: the tracker keeps the chain
    if (!done && frozen) {
      thaw(frozen);
      log.warn(`dump of ${pid} failed; the process was left running`);
    }
    // A failed dump leaves no set that looks complete: the process ran on after it.
    if (inventoryWritten && !complete) withdrawInventory(dir, log);
  }
}

/** Removes the inventory of a dump that failed after writing it: the set is incomplete again. */
function withdrawInventory(dir: string, log: Logger): void {
  try {
    unlinkSync(join(dir, INVENTORY));
    syncDir(dir);
  } catch (e) {
    log.warn(`could not remove ${join(dir, INVENTORY)} after the failed dump: ${(e as Error).message}`);
  }
}

/** SIGKILL while still stopped, then collect the exit as its tracer. */
function killFrozen(f: Frozen, log: Logger): void {
  native.kill(f.pid, SIG.KILL);
  // The leader is reported last: only once its other threads are collected (as their tracer, by us).
  for (const tid of [...f.tids.filter((t) => t !== f.pid), f.pid]) {
    try {
      native.waitpid(tid, 0);
    } catch (e) {
      log.debug(`waitpid(${tid}) after kill: ${(e as Error).message}`);
    }
  }
}
