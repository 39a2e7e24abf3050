// `criu-ts dump`: the stages, in order. Each stage wraps its failure with its name and the
// pid; any failure before the kill detaches and leaves the process running as it was (and
// a pre-dump chain's tracking in place, so the dump can be tried again: its scan finds the
// written pages without protecting them again, see Tracking.final).
//
//   [parent: check the chain (or go on from a failed dump's catch-up, see failedCatchUp),
//    take the tracking uffd from its tracker; smaps read, with a count of the syscalls that
//    could change it (see layout.ts); a tracked chain: pre-touch copy buffers, start the
//    sync thread, rehearse the final plan and copy (see rehearsal.ts), catch-up passes
//    while 16 MiB or more were written (see catch-up.ts), reserve page cache for the pages
//    file (synced), the parent's coverage (see parentCoverage); a full collection of our
//    own heap; TurboFan paused]
//   freeze ─► layout (maps) ─► collect mm (brk), cores, process, timers (their getters run
//          by a parasite, or stepped one by one; results in a scratch page borrowed from
//          the stack, or mapped and unmapped) ─► [smaps read on the pool from here]
//          ─► plan pages (written since the parent, or all present),
//          and copy, compress, write them as the scan finds them (over a reservation, each
//          write sent to the disk at once, flushed every 8 MiB) ─► files  [the pages' fsync
//          runs] ─► VmFlags from smaps ─► [--leave-running: detach] ─► metadata ─► pages
//          file synced, its index ─► inventory (the set is now complete) ─► end tracking
//          ─► kill
import { unlinkSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { inStage, throwIfAborted } from '../errors.js';
import type { Logger } from '../log.js';
import { CompressPool } from '../images/compress-pool.js';
import { writeCore, type Core } from '../images/core.js';
import { writeFiles } from '../images/files.js';
import { writeTimers, type Timers } from '../images/timers.js';
import { INVENTORY } from '../images/inventory.js';
import { createImageDir, DeferredSyncs, syncDir } from '../images/io.js';
import { writeMm } from '../images/mm.js';
import { writePstree } from '../images/pstree.js';
import { native } from '../kernel/native.js';
import { readSmapsAsync } from '../kernel/procfs.js';
import { Remote, findSyscallInsn, stackScratchAt } from '../kernel/remote.js';
import { Parasite } from '../kernel/parasite.js';
import { getReg } from '../kernel/regs.js';
import { SIG } from '../kernel/syscalls.js';
import { newInventory, openParent, writeInventory, type Parent } from './chain.js';
import { collectProcess, collectThread } from './collect-core.js';
import { collectFiles } from './collect-files.js';
import { collectTimers } from './collect-timers.js';
import { collectMm } from './collect-mm.js';
import { FlagsEarly, readLayout, vmFlagsInto, type Layout } from './layout.js';
import { faultPoint, timer, type DumpContext, type DumpOptions, type Stats } from './context.js';
import type { Frozen } from './freeze.js';
import { freezeTree, listTree, live, thawTree, type TreeProc } from './tree.js';
import { collectGarbage } from './heap.js';
import { pauseOptimizer } from './jit.js';
import { shareAcrossTree } from './fds/shared.js';
import { HeldConnections } from './fds/tcp.js';
import { pipeHolders } from './fds/pipes.js';
import { NetworkLock } from '../net/lock.js';
import type { Files } from '../images/files.js';
import type { Mm, Vma } from '../images/mm.js';
import { copyPlannedDeferred, planStreamed, type CopiedPass } from './pass.js';
import { parentCoverage, scanBuffers, writtenSoFar, type ScanBuffers } from './plan.js';
import { COPY_CHUNK } from './memory.js';
import { batchBytes, PagesWriter } from '../images/pages.js';
import { SyncThread } from '../images/sync-thread.js';
import { MAX_REHEARSAL, rehearse } from './rehearsal.js';
import { CATCH_UP_MIN_BYTES, anotherCatchUp, catchUpPass, failedCatchUp } from './catch-up.js';
import { acquireTracking, endTracking, waitTrackerGone, type TrackingInfo } from './tracking.js';

/** The most page cache a final dump fills ahead (see PagesWriter.reserve); beyond it, writes just go slower. */
const MAX_RESERVE = 1 << 30;

export interface DumpResult {
  pid: number;
  imagesDir: string;
  stats: Stats;
  killed: boolean;
  notes: string[];
  /** The catch-up passes made before the freeze (see catch-up.ts), each with its pass's statistics. */
  catchUps?: Array<{ dir: string; stats: Stats }>;
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
  const pid = opts.pid;
  const tcp = opts.tcpEstablished ? new HeldConnections(new NetworkLock(pid, opts.networkLock ?? 'nftables'), log) : undefined;
  const ctx: DumpContext = { opts, log, stats: {}, fault, ...(tcp ? { tcp } : {}) };
  const dir = opts.imagesDir;
  const total = timer();
  const notes: string[] = [];
  createImageDir(dir);
  let parent: Parent | undefined = opts.prevImagesDir ? await stage(ctx, 'parent', pid, () => openParent(dir, opts.prevImagesDir!, pid)) : undefined;
  // Each process of a chain has its own tracker; the dump takes each one's uffd back.
  const trackingInfos: TrackingInfo[] = parent?.inventory.tracking ?? [];
  const via = parent && trackingInfos.length ? failedCatchUp(parent, trackingInfos[0]!) : undefined;
  if (via) {
    parent = await stage(ctx, 'parent', pid, () => openParent(dir, relative(resolve(dir), via), pid));
    notes.push(`a dump that failed made a catch-up pass from the parent: this one goes on from it (${via})`);
    log.warn(notes[notes.length - 1]!);
  }
  const uffds = new Map<number, number>();
  for (const info of trackingInfos) {
    const got = acquireTracking(info, info.targetPid, parent!.inventory.id);
    if ('fd' in got) uffds.set(info.targetPid, got.fd);
    else {
      notes.push(`write tracking of ${info.targetPid} was lost (${got.lost}): all of it is saved in this dump`);
      log.warn(notes[notes.length - 1]!);
    }
  }
  // The end of a tracked chain copies only what changed since the last pass, and copies it
  // while the process is frozen: stored frames keep that downtime at copy speed, where zstd
  // would take several times longer (the bulk, in the pre-dump sets, stays compressed).
  const level = opts.compressionLevel ?? (uffds.size ? 0 : 3);
  const pool = new CompressPool(level, opts.compressThreads);
  const writers = new Map<number, PagesWriter>();
  const copied: CopiedPass[] = [];
  /** The set's files written in the write stage, synced together at its end. */
  const syncs = new DeferredSyncs();
  /** Flushes the pages written so far while the rest is copied (see PagesWriter.reserve). */
  let syncThread: SyncThread | undefined;
  let scans: ScanBuffers | undefined;
  let resumeOptimizer: (() => void) | undefined;
  let tree: TreeProc[] = [];
  let done = false;
  let inventoryWritten = false;
  let complete = false;
  let released = false;
  /** Lets the processes go on (the dump succeeded with --leave-running, or failed). */
  const release = () => {
    released = true;
    if (frozenAt) ctx.stats.frozenMs = frozenAt();
    tcp?.release(); // before the thaw: in repair mode the process could not send
    thawTree(tree);
    resumeOptimizer?.();
    if (tree.length) log.debug(`pid ${pid}: running again${ctx.stats.frozenMs === undefined ? '' : ` after ${ctx.stats.frozenMs.toFixed(1)} ms frozen`}`);
  };
  let frozenAt: (() => number) | undefined;
  /** smaps read before the freeze, per process (see FlagsEarly). */
  const early = new Map<number, FlagsEarly>();
  /** The catch-up sets made (relative to dir); the last is the chain's last pass from then on. */
  const catchUpPasses: Array<{ dir: string; stats: Stats }> = [];
  /** Who else holds each pipe, per process, found before the freeze (only named in notes). */
  const holders = new Map<number, Map<string, number[]>>();
  try {
    // Best effort: a process that is not there is the freeze stage's to report.
    let before: Array<{ pid: number }> = [];
    try {
      before = listTree(pid);
    } catch {
      /* see the freeze */
    }
    for (const p of before) {
      const e = FlagsEarly.start(p.pid, log);
      if (e) early.set(p.pid, e);
      try {
        holders.set(p.pid, pipeHolders(p.pid));
      } catch {
        /* gone: the freeze will say so */
      }
    }
    // Worker start-up, and the first touch of the copy buffers and of the page cache the
    // final dump of a tracked chain will write (see PagesWriter.reserve), before the freeze.
    await pool.warm(uffds.size ? [{ size: COPY_CHUNK, count: 8 }, { size: batchBytes(), count: 2 }] : []);
    if (uffds.size) {
      syncThread = await SyncThread.start();
      // Also the scans' region buffers (a tracked chain's final scan walks in 53 slices for
      // 4 GiB, each needing one: fresh, they cost 8-17 ms while frozen).
      scans = scanBuffers();
    }
    // What each tracked process wrote since the last pass so far (a walk of its page tables):
    // whether to catch up, whether to rehearse, how much to reserve; again after each catch-up.
    const soFar = () => new Map([...uffds.keys()].map((tpid) => [tpid, writtenSoFar(tpid)]));
    const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    let written = soFar();
    // The final plan and copy run once now on the running process (see rehearsal.ts): in
    // memory. Before any catch-up pass, whose copy then runs warm code too and whose end
    // nothing but the reservation separates from the freeze.
    const rehearseAll = async () => {
      for (const [tpid, fd] of uffds) {
        if (written.get(tpid)! > MAX_REHEARSAL) continue;
        await rehearse({ pid: tpid, vmas: readLayout(tpid).vmas, tracking: { fd, final: true }, parent: parent?.pages.get(tpid), pool, scanBuffers: scans }, log);
      }
    };
    // More passes while it runs, while enough was written since the last one and each finds
    // at most three quarters of what the one before did (see catch-up.ts). Only a chain whose every
    // tracker answered: a catch-up starts no tracking.
    const catchUps = opts.catchUp !== false && parent !== undefined && uffds.size === trackingInfos.length && sum(written) >= CATCH_UP_MIN_BYTES;
    if (catchUps) await rehearseAll();
    for (let round = 1; catchUps; round++) {
      const from = parent!;
      const c = await stage(ctx, 'catchUp', pid, () => catchUpPass({ pid, dir, parent: from, pool, pids: new Set(uffds.keys()), signal: opts.signal }, log, fault));
      parent = c.parent;
      catchUpPasses.push({ dir: c.parent.rel, stats: c.pass.stats });
      ctx.stats.catchUpPages = (ctx.stats.catchUpPages ?? 0) + (c.pass.stats.pagesSaved ?? 0);
      ctx.stats.catchUpPasses = round;
      log.debug(`catch-up pass ${round} (pid ${pid}): ${c.pass.stats.pagesSaved} pages in ${c.pass.stats.totalMs!.toFixed(1)} ms`);
      const before = sum(written);
      written = soFar();
      if (!anotherCatchUp(round, before, sum(written))) break;
    }
    const reserved = [...uffds.keys()].map((tpid) => {
      const w = new PagesWriter(dir, tpid, pool);
      writers.set(tpid, w);
      // A quarter more than written so far, for what is written until the freeze (and the
      // rehearsal). Its flush runs on the sync thread meanwhile.
      const r = w.reserve(Math.min(Math.ceil(written.get(tpid)! * 1.25) + COPY_CHUNK, MAX_RESERVE), syncThread);
      r.catch(() => {}); // awaited below
      return r;
    });
    // What each parent covers, made now: the index, with its PARENT ranges, is written
    // before a killed process may die (see parentCoverage).
    for (const tpid of uffds.keys()) {
      const pp = parent?.pages.get(tpid);
      if (pp) parentCoverage(pp);
    }
    // In memory, while the disk takes the reservation.
    if (!catchUps) await rehearseAll();
    await Promise.all(reserved);
    // Read before the freeze, not on the cores the frozen copy needs.
    for (const e of early.values()) await e.smaps.catch(() => {});
    // Garbage made so far is collected now, not while the process is frozen (see heap.ts).
    collectGarbage();
    // Nor any optimizing compile while it is frozen (see jit.ts).
    resumeOptimizer = pauseOptimizer();
    // Frozen from the request to stop on (the first thread stops somewhere in the freeze
    // stage; counting all of it errs on the long side).
    frozenAt = timer();
    // Kept as soon as it exists: whatever fails after this point must thaw it.
    await stage(ctx, 'freeze', pid, () => (tree = freezeTree(pid, log)));
    const procs = live(tree);
    // The layout, then whatever takes the process's own syscalls (see collectState), then the
    // pages, which go to disk while the files are collected and the metadata written.
    const layouts = new Map<number, Layout>();
    for (const p of procs) {
      const l = await stage(ctx, 'layout', p.pid, () => readLayout(p.pid));
      // Before anything of ours runs in the process (the count would see our syscalls).
      const held = early.get(p.pid)?.held(log);
      if (held) l.smaps = held;
      layouts.set(p.pid, l);
    }
    shareShm(procs.map((p) => ({ pid: p.pid, vmas: layouts.get(p.pid)!.vmas })));
    const states = new Map<number, State>();
    // smaps (VmFlags) on the pool from when no remote call is left to change the layout or to
    // wait for the mm's lock (see collectState), alongside the rest of the collection and the pages.
    for (const p of procs) {
      const l = layouts.get(p.pid)!;
      const startSmaps = () => {
        if (l.smaps) return; // read before the freeze, and still good
        l.smaps = readSmapsAsync(p.pid);
        l.smaps.catch(() => {}); // awaited by vmFlagsInto; a dump that fails before never asks
      };
      states.set(p.pid, await collectState(ctx, p.pid, p.frozen, l, startSmaps));
    }
    await stage(ctx, 'pages', pid, async () => {
      for (const p of procs) {
        const uffd = uffds.get(p.pid);
        const tracked = uffd !== undefined;
        const input = {
          pid: p.pid,
          vmas: layouts.get(p.pid)!.vmas,
          tracking: tracked ? { fd: uffd, final: true } : undefined,
          parent: tracked ? parent?.pages.get(p.pid) : undefined,
          dir,
          pool,
          log,
          progress: opts.onProgress,
          writer: writers.get(p.pid),
          scanBuffers: scans,
        };
        // The copy starts with the first pages the scan finds, so the disk starts too.
        const tPlan = timer();
        let tCopy = tPlan;
        const c = await copyPlannedDeferred(input, planStreamed(input), true, (plan_) => {
          const planMs = tPlan();
          tCopy = timer();
          ctx.stats.planMs = (ctx.stats.planMs ?? 0) + planMs;
          log.debug(`pages (pid ${p.pid}): plan ${planMs.toFixed(2)} ms, ${plan_.items.length} items`);
          notes.push(...plan_.notes);
          faultPoint(ctx, 'mid-pages');
        });
        writers.delete(p.pid); // c has it now (a failure before this discards it below)
        copied.push(c);
        // The copy's part after the plan (it began with it).
        const copyMs = tCopy();
        ctx.stats.copyMs = (ctx.stats.copyMs ?? 0) + copyMs;
        log.debug(`pages (pid ${p.pid}): copy and write ${copyMs.toFixed(2)} ms`);
      }
    });
    const files = new Map<number, { files: Files; ghostBytes: number; notes: string[] }>();
    for (const p of procs) {
      files.set(p.pid, await stage(ctx, 'files', p.pid, () => collectFiles(p.pid, { shellJob: !!ctx.opts.shellJob, dir, log: ctx.log, pipeHolders: holders.get(p.pid), ...(ctx.tcp ? { tcp: ctx.tcp } : {}) })));
    }
    const fileNotes = [...files.values()].flatMap((c) => c.notes);
    shareAcrossTree(procs.map((p) => ({ pid: p.pid, files: files.get(p.pid)!.files })), fileNotes);

    // The last of what needs the process frozen: smaps's flags (read as it was at the freeze).
    const tFlags = timer();
    for (const p of procs) await stage(ctx, 'vmFlags', p.pid, () => vmFlagsInto(p.pid, layouts.get(p.pid)!, log));
    ctx.stats.vmFlagsWaitMs = tFlags();
    // --leave-running: everything of the process is ours now (its pages in the page cache,
    // the rest in memory), so it runs on while the set is written and synced. A failure from
    // here on fails the dump as before (no inventory), and the chain's tracking stays for a
    // retry (the final scan protected nothing again). A killed process waits for the sync:
    // it may only go once its image is safe.
    if (opts.leaveRunning) release();

    await stage(ctx, 'write', pid, async () => {
      for (const p of procs) {
        const st = states.get(p.pid)!;
        const fl = files.get(p.pid)!;
        for (const core of st.cores) writeCore(dir, core, syncs);
        writeMm(dir, st.mm, syncs);
        writeFiles(dir, fl.files, syncs);
        writeTimers(dir, st.timers, syncs);
        ctx.stats.ghostBytes = (ctx.stats.ghostBytes ?? 0) + fl.ghostBytes;
      }
      writePstree(dir, {
        processes: tree.map((p) => ({
          pid: p.pid,
          ppid: p.ppid,
          pgid: p.pgid,
          sid: p.sid,
          threads: p.frozen ? p.frozen.tids : [p.pid],
          state: p.zombieStatus !== undefined ? 'zombie' : p.frozen!.stoppedBy ? 'stopped' : 'running',
          ...(p.zombieStatus !== undefined ? { exitStatus: p.zombieStatus } : {}),
        })),
      }, syncs);
      ctx.stats.processes = tree.length;
      // The pages files on disk (their fsync ran meanwhile), their indexes written, and every
      // file so far synced at once.
      const tSync = timer();
      // (complete() writes its index at once, then waits for its pages file.)
      const passes = copied.splice(0);
      const settled = await Promise.allSettled([...passes.map((c) => c.complete(syncs)), syncs.flush()]);
      const failed = settled.find((d) => d.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      // Counted once complete, which works out the PARENT ranges.
      for (const c of passes) for (const [k, v] of Object.entries(c.stats)) ctx.stats[k] = (ctx.stats[k] ?? 0) + v;
      // Older names, kept for scripts that read them.
      ctx.stats.pagesBytesRaw = ctx.stats.bytesRaw!;
      ctx.stats.pagesBytesStored = ctx.stats.bytesStored!;
      ctx.stats.syncMs = tSync();
      // As of the inventory; a killed process's frozenMs runs on to the kill.
      ctx.stats.frozenMs ??= frozenAt!();
      ctx.stats.totalMs = total();
      // The inventory goes last: only a set that has one is complete.
      const options = { shellJob: !!opts.shellJob, leaveRunning: !!opts.leaveRunning, trackMem: !!opts.trackMem };
      notes.push(...fileNotes);
      if (tcp?.count && !opts.leaveRunning) {
        notes.push(opts.networkLock === 'skip' ? `${tcp.count} established TCP connection(s) saved; the network is not locked (--network-lock skip)` : `${tcp.count} established TCP connection(s) saved; their packets are dropped (nft table inet ${tcp.lock.table}) until they are restored`);
      }
      const inv = newInventory('dump', pid, parent, options, ctx.stats, notes.length ? { notes } : {});
      inv.pids = tree.map((p) => p.pid);
      writeInventory(dir, inv);
      inventoryWritten = true;
      syncDir(dir);
    });
    faultPoint(ctx, 'before-kill');

    // The chain ends here: no tracker, no registration, no write protection stays behind.
    // The trackers are told now and waited for once the processes are killed or let go: a
    // process that runs on meanwhile only has its writes tracked a moment longer.
    for (const fd of uffds.values()) endTracking(undefined, fd);
    uffds.clear();
    for (const info of trackingInfos) endTracking(info);
    complete = true; // from here on the set stands: the processes are about to be killed
    if (!opts.leaveRunning) {
      ctx.stats.frozenMs = frozenAt();
      killTree(procs.map((p) => p.frozen), log);
      tcp?.closeKilled();
    }
    done = true;
    for (const info of trackingInfos) await waitTrackerGone(info);
    ctx.stats.totalMs = total();
    log.info(`dumped pid ${pid} to ${dir} in ${total().toFixed(1)} ms (frozen ${ctx.stats.frozenMs!.toFixed(1)} ms)`);
    return { pid, imagesDir: dir, stats: ctx.stats, killed: !opts.leaveRunning, notes, ...(catchUpPasses.length ? { catchUps: catchUpPasses } : {}) };
  } finally {
    for (const w of writers.values()) w.discard(); // made ahead, never used: no process, or a failure before its copy
    for (const c of copied) c.abort();
    syncs.close();
    resumeOptimizer?.();
    await pool.close();
    for (const fd of uffds.values()) endTracking(undefined, fd); // our copies only: the trackers keep the chain
    if (!done && !released) release();
    for (const e of early.values()) e.close(); // the process runs again, or is dead (see close)
    if (!done && tree.length) {
      log.warn(`dump of ${pid} failed; the process${tree.length > 1 ? 'es were' : ' was'} left running`);
    }
    const caughtUp = catchUpPasses[catchUpPasses.length - 1];
    if (!complete && caughtUp) {
      // A dump retried from the same parent goes on from it (see failedCatchUp), while it is there.
      log.warn(`the write tracking of ${pid} now continues from ${join(dir, caughtUp.dir)} (this dump's catch-up pass): keep it for a retry`);
    }
    // A failed dump leaves no set that looks complete: the process ran on after it.
    if (inventoryWritten && !complete) withdrawInventory(dir, log);
    await syncThread?.close(); // after the thaw: a failed dump does not keep the process waiting
  }
}

interface State {
  cores: Core[];
  mm: Mm;
  timers: Timers;
}

/**
 * What the process's own syscalls tell (mm, cores, process, timers), through a scratch page
 * that is gone again before the pages are copied: the process must not run after the copy.
 * On this VM (a PVM guest) the first time a process runs after process_vm_readv has pinned
 * thousands of its pages costs 3-30 ms; the copy comes after every remote call, and nothing
 * after it wakes the process (the final dump of a tracked chain kills it, or lets it go).
 *
 * The scratch page is borrowed from the leader's stack below its pointer where it can be
 * (see stackScratchAt), else mapped. The getters run through a parasite (see parasite.ts),
 * else one step each. smaps (a walk of every page table, 15-30 ms of CPU for 4 GiB) starts
 * once nothing of ours is mapped any more, on the pool: right after brk(0) when nothing is
 * (the collection then waits on the process's syscalls beside it). onLayoutFixed is where.
 */
async function collectState(ctx: DumpContext, pid: number, f: Frozen, layout: Layout, onLayoutFixed: () => void): Promise<State> {
  const remote = new Remote(pid, findSyscallInsn(pid, layout.maps));
  const collect = (scratch: number, afterBrk: () => void): State => {
    const mm = collectMm(pid, layout.vmas, remote);
    afterBrk();
    const cores: Core[] = f.tids.map((tid) => collectThread(pid, tid, tid === pid ? remote : remote.onThread(tid), scratch));
    cores[0]!.process = collectProcess(pid, remote, scratch, f.stoppedBy);
    return { cores, mm, timers: collectTimers(pid, remote, scratch) };
  };
  // With the parasite mapped the layout differs from the one read, so the layout is fixed
  // (smaps may start) only once it is gone again: a collection of a few ms by then.
  const viaParasite = (scratch: number, afterBrk: () => void): State => {
    const p = Parasite.map(remote, pid);
    if (typeof p === 'string') {
      ctx.log.debug(`collect (pid ${pid}): syscalls stepped one at a time (no parasite: ${p})`);
      return collect(scratch, afterBrk);
    }
    ctx.log.debug(`collect (pid ${pid}): parasite at 0x${p.base.toString(16)}`);
    remote.parasite = p;
    let st: State;
    try {
      st = collect(scratch, () => {});
    } finally {
      remote.parasite = undefined;
      p.unmap(remote);
    }
    afterBrk();
    return st;
  };
  return stage(ctx, 'collect', pid, () => {
    const onStack = stackScratchAt(layout.maps, Number(getReg(native.ptraceGetRegs(pid), 'rsp')), 4096);
    if (onStack !== undefined) {
      ctx.log.debug(`collect (pid ${pid}): scratch page borrowed from its stack at 0x${onStack.toString(16)}`);
      return remote.withBorrowedScratch(pid, onStack, 4096, (scratch) => viaParasite(scratch, onLayoutFixed));
    }
    ctx.log.debug(`collect (pid ${pid}): scratch page mapped (no room below its stack pointer in [stack])`);
    const st = remote.withScratch(4096, (scratch) => viaParasite(scratch, () => {}));
    onLayoutFixed();
    return st;
  });
}

/** Shared memory seen in several processes is saved by the first of them (tree order). */
function shareShm(mms: Array<{ pid: number; vmas: Vma[] }>): void {
  const owner = new Map<string, number>();
  for (const mm of mms) {
    for (const v of mm.vmas) {
      if (!v.shm) continue;
      if (!owner.has(v.shm.id)) owner.set(v.shm.id, mm.pid);
      v.shm.owner = owner.get(v.shm.id)!;
    }
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

/** SIGKILL every process while still stopped, then collect their exits as their tracer. */
function killTree(frozen: Frozen[], log: Logger): void {
  for (const f of frozen) native.kill(f.pid, SIG.KILL);
  for (const f of frozen) {
    // The leader is reported last: only once its other threads are collected (by us, their tracer).
    for (const tid of [...f.tids.filter((t) => t !== f.pid), f.pid]) {
      try {
        native.waitpid(tid, 0);
      } catch (e) {
        log.debug(`waitpid(${tid}) after kill: ${(e as Error).message}`);
      }
    }
  }
}
