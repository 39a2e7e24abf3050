// `criu-ts restore`: the stages, in order. Everything is validated before a process
// exists; after that, any failure kills what was created (the stub is also PTRACE_O_EXITKILL,
// so it dies with us if we die).
//
//   load + validate images ─► stub with the PID ─► park, clear, move vDSO ─► map VMAs
//   ─► write pages ─► PR_SET_MM_MAP ─► fds ─► sigactions, rlimits, cwd, ... ─► thread state
//   ─► pending signals ─► credentials ─► unmap the parking page ─► registers
//   ─► established TCP connections live again (network unlocked) ─► detach
import { join } from 'node:path';
import { CriuError, inStage } from '../errors.js';
import { closeSync } from 'node:fs';
import { loadChain, openChainReaders, resolvePages, type ImageSet, type Segment } from '../images/imageset.js';
import { Guardian } from '../lazy/guardian.js';
import { offerUffd } from '../lazy/handoff.js';
import { serveLazy, statsFields } from '../lazy/serve.js';
import { debtOf, eagerRanges, fillNow, lazyRanges, mustBeIn, registerLazy, type LazySetup } from './lazy.js';
import { mmFile } from '../images/mm.js';
import type { PagesReader } from '../images/pages.js';
import { native } from '../kernel/native.js';
import { decodeStatus } from '../kernel/wait.js';
import type { Logger } from '../log.js';
import type { RestoreContext, RestoreOptions } from './context.js';
import { restoreFiles } from './files.js';
import { restoreTimers } from './timers.js';
import { createVmas, fillMemory, setMmMap } from './mm.js';
import { restoreCredentials, restoreProcessMisc, restoreSignalsAndLimits } from './process.js';
import { createStub, prepareForked, prepareStub, type Stub } from './stub.js';
import { destroyAll, forkChild, makeZombie, sessionAndGroup } from './tree.js';
import { ShmRegistry } from './shm.js';
import { TreeFds } from './fds/tree.js';
import { finishConnections } from './fds/tcp.js';
import { entersSyscall, requeueSignals, restoreThreadState, setFinalRegs } from './thread.js';
import { resumeThreads } from './resume.js';
import { createThreads } from './threads.js';
import { Remote } from '../kernel/remote.js';
import { PR, SYS } from '../kernel/syscalls.js';
import { putString } from './remote-args.js';

export interface RestoreResult {
  pid: number;
  stats: Record<string, number>;
  /** Without detach: the process's exit status (128 + signal if killed). */
  exitCode?: number;
  /** restore --lazy -d: the daemon serving the pages. */
  serverPid?: number;
  /** Set in that daemon's own result (its command returned long ago). */
  daemonDone?: boolean;
}

function faultPoint(ctx: RestoreContext, name: string): void {
  if (ctx.fault === `${name}:fail`) throw new CriuError('EFAULTINJ', `fault injected at ${name}`);
  if (ctx.fault === `${name}:kill`) process.kill(process.pid, 'SIGKILL');
}

function timed<T>(ctx: RestoreContext, name: string, pid: number, fn: () => T): T {
  const t0 = process.hrtime.bigint();
  try {
    const r = fn();
    ctx.stats[`${name}Ms`] = Number(process.hrtime.bigint() - t0) / 1e6;
    faultPoint(ctx, name);
    return r;
  } catch (e) {
    throw inStage(name, pid, e);
  }
}

export async function restore(opts: RestoreOptions, log: Logger, fault?: string): Promise<RestoreResult> {
  const ctx: RestoreContext = { opts, log, stats: {}, fault };
  const t0 = process.hrtime.bigint();
  const chain = loadChain(opts.source ?? opts.imagesDir);
  ctx.stats.loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const set = chain[0]!;
  if (set.inventory.kind !== 'dump') throw new CriuError('EINVAL', `${opts.imagesDir} holds a pre-dump; restore needs a dump`);
  const pid = set.inventory.rootPid;
  // pstree.json lists the tree breadth first from the root: parents before their children.
  const procs = set.pstree.processes;
  const alive = procs.filter((p) => p.state !== 'zombie');
  const lazyMode = !!(opts.lazy || opts.lazyPages);
  if (opts.lazyPages && procs.length > 1) throw new CriuError('ENOTSUP', '--lazy-pages serves one process; use --lazy for a tree');
  const readers = new Map<number, PagesReader[]>();
  const segments = new Map<number, Segment[]>();
  const closeReaders = () => {
    for (const rs of readers.values()) for (const r of rs) r.close();
  };
  try {
    for (const p of alive) {
      readers.set(p.pid, openChainReaders(chain, p.pid));
      // An eager restore reads every frame anyway: check the frame tables whole, now, before
      // any process exists. A lazy one reads them one at a time, each checked as it is read.
      if (!lazyMode) for (const r of readers.get(p.pid)!) void r.index.frames;
      // Every page resolved through the chain now: a page promised but absent stops us here.
      // (Lazy: the memory written before resume; the rest is resolved by the server, after.)
      const eager = lazyMode ? eagerRanges(set.mms.get(p.pid)!) : undefined;
      segments.set(p.pid, resolvePages(readers.get(p.pid)!, p.pid, eager));
    }
  } catch (e) {
    closeReaders();
    throw e;
  }
  ctx.stats.indexMs = Number(process.hrtime.bigint() - t0) / 1e6 - ctx.stats.loadMs;
  const allVmas = alive.flatMap((p) => set.mms.get(p.pid)!.vmas);
  const shm = new ShmRegistry(alive.map((p) => set.mms.get(p.pid)!));
  const treeFds = new TreeFds(set.files);
  const created: number[] = [];
  const setups = new Map<number, LazySetup>();
  let guardian: Guardian | undefined;
  try {
    const stubs = new Map<number, Stub>();
    const done = new Set<number>();
    for (const p of procs) {
      let stub: Stub;
      if (p.pid === pid) {
        // Kept as soon as it exists: whatever fails after this point must destroy it.
        timed(ctx, 'stub', pid, () => created.push(createStub(pid, log)));
        stub = timed(ctx, 'prepare', pid, () => prepareStub(pid, set.mms.get(pid)?.vmas ?? [], allVmas));
      } else {
        const parent = stubs.get(p.ppid);
        if (!parent) throw new CriuError('EINVAL', `process ${p.pid}: its parent ${p.ppid} is not in the image (or not alive)`);
        timed(ctx, 'fork', p.pid, () => created.push(forkChild(parent, p.pid)));
        stub = timed(ctx, 'prepare', p.pid, () => prepareForked(p.pid, parent, set.mms.get(p.pid)?.vmas ?? [], allVmas));
      }
      sessionAndGroup(stub, p, done, log);
      done.add(p.pid);
      if (p.state === 'zombie') {
        makeZombie(stub, p.exitStatus ?? 0);
        continue;
      }
      stubs.set(p.pid, stub);
    }
    for (const p of alive) {
      const setup = buildProcess(ctx, stubs.get(p.pid)!, set, readers.get(p.pid)!, segments.get(p.pid)!, p.pid, shm, treeFds);
      if (setup) setups.set(p.pid, setup);
    }
    shm.close();
    treeFds.close();
    if (setups.size && opts.lazyPages) {
      // Two-step: the lazy-pages server takes the uffd (and guards it) before we let go.
      const setup = setups.get(pid)!;
      await timedAsync(ctx, 'handoff', pid, () => offerUffd(opts.imagesDir, { pid, from: process.pid, fd: setup.fd }));
      closeSync(setup.fd);
      setups.clear();
    } else if (setups.size) {
      // Before any process runs, someone besides us must hold its uffd (see guardian.c).
      const g = Guardian.start(log.fd);
      guardian = g;
      timed(ctx, 'guardian', pid, () => {
        for (const [p, s] of setups) {
          g.hold(s.fd);
          g.watch(p);
        }
      });
    }
    // Last before the processes run: from here on the connections talk to their peers.
    const tcp = timed(ctx, 'tcp', pid, () => finishConnections(pid, new Map(alive.map((p) => [p.pid, set.files.get(p.pid)!])), log));
    if (tcp) ctx.stats.tcpConnections = tcp;
    timed(ctx, 'resume', pid, () => {
      // Children first: the root's parent (us) never waits on them, but they start together.
      for (const p of [...alive].reverse()) resumeThreads(p.threads, new Set(p.threads.filter((t) => entersSyscall(set.cores.get(t)!))), log);
    });
    created.length = 0;
  } catch (e) {
    destroyAll(created);
    shm.close();
    treeFds.close();
    guardian?.done();
    for (const s of setups.values()) closeSync(s.fd);
    closeReaders();
    throw e;
  }
  for (const p of alive) {
    const stoppedBy = set.cores.get(p.pid)!.process!.stoppedBy;
    if (stoppedBy) native.kill(p.pid, stoppedBy);
  }
  ctx.stats.processes = procs.length;
  ctx.stats.totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
  log.info(`restored pid ${pid}${procs.length > 1 ? ` and ${procs.length - 1} more` : ''} in ${ctx.stats.totalMs.toFixed(1)} ms`);
  opts.onResumed?.(pid, { ...ctx.stats });
  if (guardian && setups.size && lazyMode) {
    try {
      const spaces = [...setups].map(([p, s]) => ({ pid: p, fd: s.fd, pending: debtOf(s), readers: readers.get(p)! }));
      Object.assign(ctx.stats, statsFields('lazy', serveLazy({ log, guardian, spaces })));
    } catch (e) {
      closeReaders();
      throw e;
    }
  }
  closeReaders();
  if (opts.detach) return { pid, stats: ctx.stats };
  const { status } = await native.waitpidAsync(pid, 0);
  const s = decodeStatus(status);
  const exitCode = s.kind === 'exited' ? s.code : s.kind === 'signaled' ? 128 + s.signal : 1;
  log.info(`pid ${pid} ${s.kind === 'exited' ? `exited with ${s.code}` : `was killed by signal ${s.kind === 'signaled' ? s.signal : '?'}`}`);
  return { pid, stats: ctx.stats, exitCode };
}

async function timedAsync<T>(ctx: RestoreContext, name: string, pid: number, fn: () => Promise<T>): Promise<T> {
  const t0 = process.hrtime.bigint();
  try {
    const r = await fn();
    ctx.stats[`${name}Ms`] = Number(process.hrtime.bigint() - t0) / 1e6;
    return r;
  } catch (e) {
    throw inStage(name, pid, e);
  }
}

function buildProcess(
  ctx: RestoreContext,
  stub: Stub,
  set: ImageSet,
  readers: PagesReader[],
  segments: Segment[],
  pid: number,
  shm: ShmRegistry,
  treeFds: TreeFds,
): LazySetup | undefined {
  const mm = set.mms.get(pid)!;
  const core = set.cores.get(pid)!;
  const files = set.files.get(pid)!;
  const p = core.process!;
  const tids = set.pstree.processes.find((x) => x.pid === pid)!.threads;
  const remoteOf = (tid: number) => (tid === pid ? stub.remote : new Remote(tid, stub.park, false));
  timed(ctx, 'vmas', pid, () => createVmas(stub, mm, join(set.dir, mmFile(pid)), ctx.log, shm));
  let setup: LazySetup | undefined;
  if (ctx.opts.lazy || ctx.opts.lazyPages) {
    const ranges = lazyRanges(mm);
    ctx.stats.pagesBytes = timed(ctx, 'pages', pid, () => fillMemory(stub, readers, segments)).bytes;
    setup = timed(ctx, 'uffd', pid, () => {
      const s = registerLazy(stub, ranges, readers, pid);
      for (const r of mustBeIn(tids.map((t) => set.cores.get(t)!))) fillNow(s, r, readers);
      return s;
    });
  } else {
    ctx.stats.pagesBytes = timed(ctx, 'pages', pid, () => fillMemory(stub, readers, segments)).bytes;
  }
  timed(ctx, 'mm', pid, () => setMmMap(stub, mm));
  timed(ctx, 'files', pid, () => {
    restoreFiles(stub, files, set.source, !!ctx.opts.shellJob, ctx.log, ctx.opts.inheritFds, treeFds);
    restoreTimers(stub, set.timers.get(pid)!);
  });
  timed(ctx, 'process', pid, () => {
    restoreSignalsAndLimits(stub, p);
    restoreProcessMisc(stub, p, pid, ctx.log);
    createThreads(stub, tids);
    for (const tid of tids) {
      const c = set.cores.get(tid)!;
      const r = remoteOf(tid);
      restoreThreadState(stub, r, c);
      if (tid !== pid) r.call(SYS.prctl, 'prctl(PR_SET_NAME)', PR.SET_NAME, putString(stub, c.comm));
      requeueSignals(stub, r, pid, tid, c, tid === pid ? p.sharedPending : []);
    }
    for (const tid of tids) restoreCredentials(stub, p, remoteOf(tid));
  });
  timed(ctx, 'finish', pid, () => {
    // The last injected syscall unmaps the page it runs from: the stop comes at its exit,
    // before the next instruction fetch, and the registers are replaced right after.
    stub.remote.munmap(stub.park, stub.scratchLen + 4096);
    for (const tid of tids) setFinalRegs(tid, set.cores.get(tid)!);
  });
  return setup;
}
