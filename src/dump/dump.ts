// `criu-ts dump`: the stages, in order. Each stage wraps its failure with its name and the
// pid; any failure before the kill detaches and leaves the process running as it was.
//
//   freeze ─► map scratch ─► collect cores, process, mm, files ─► unmap scratch
//          ─► copy pages (scan + read + compress + write) ─► write metadata, fsync
//          ─► inventory (the set is now complete) ─► kill, or detach (--leave-running)
import { randomUUID } from 'node:crypto';
import { release } from 'node:os';
import { inStage } from '../errors.js';
import type { Logger } from '../log.js';
import { toolVersion } from '../paths.js';
import { CompressPool } from '../images/compress-pool.js';
import { writeCore, type Core } from '../images/core.js';
import { writeFiles } from '../images/files.js';
import { createImageDir, syncDir } from '../images/io.js';
import { writeInventory, type Inventory } from '../images/inventory.js';
import { writeMm } from '../images/mm.js';
import { PagesWriter } from '../images/pages.js';
import { writePstree } from '../images/pstree.js';
import { native } from '../kernel/native.js';
import { readSmaps, readStat } from '../kernel/procfs.js';
import { Remote, findSyscallInsn } from '../kernel/remote.js';
import { MAP, PROT, SIG } from '../kernel/syscalls.js';
import { collectProcess, collectThread } from './collect-core.js';
import { collectFiles } from './collect-files.js';
import { collectMm } from './collect-mm.js';
import { faultPoint, timer, type DumpContext, type DumpOptions, type Stats } from './context.js';
import { freezeProcess, thaw, type Frozen } from './freeze.js';
import { copyPages, pagesToSave } from './memory.js';

export interface DumpResult {
  pid: number;
  imagesDir: string;
  stats: Stats;
  killed: boolean;
}

async function stage<T>(ctx: DumpContext, name: string, pid: number, fn: () => T | Promise<T>): Promise<T> {
  const t = timer();
  try {
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
  createImageDir(dir);
  const pool = new CompressPool(opts.compressionLevel ?? 3, opts.compressThreads);
  let frozen: Frozen | undefined;
  let writer: PagesWriter | undefined;
  let done = false;
  try {
    frozen = await stage(ctx, 'freeze', pid, () => freezeProcess(pid, log));
    const f = frozen;
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
      const pieces = pagesToSave(pid, collected.mm.vmas);
      writer = new PagesWriter(dir, pid, pool);
      const copied = await copyPages(pid, pieces, writer);
      faultPoint(ctx, 'mid-pages');
      const ws = await writer.finish();
      writer = undefined;
      ctx.stats.pagesBytesRaw = ws.rawBytes;
      ctx.stats.pagesBytesStored = ws.storedBytes;
      ctx.stats.pagesFrames = ws.frames;
      ctx.stats.bytesRead = copied.bytesRead;
    });

    await stage(ctx, 'write', pid, () => {
      for (const c of collected.cores) writeCore(dir, c);
      writeMm(dir, collected.mm);
      writeFiles(dir, files);
      writePstree(dir, {
        processes: [
          {
            pid,
            ppid: Number(stat[4]),
            pgid: Number(stat[5]),
            sid: Number(stat[6]),
            threads: f.tids,
            state: f.stoppedBy ? 'stopped' : 'running',
          },
        ],
      });
      ctx.stats.ghostBytes = ghostBytes;
      ctx.stats.frozenMs = frozenAt();
      ctx.stats.totalMs = total();
      const inv: Inventory = {
        format: 'criu-ts',
        version: 1,
        id: randomUUID(),
        kind: 'dump',
        createdAt: new Date().toISOString(),
        toolVersion: toolVersion(),
        kernel: release(),
        arch: 'x86_64',
        pageSize: 4096,
        rootPid: pid,
        pids: [pid],
        parent: null,
        parentId: null,
        options: { shellJob: !!opts.shellJob, leaveRunning: !!opts.leaveRunning },
        stats: ctx.stats,
      };
      // The inventory goes last: only a set that has one is complete.
      writeInventory(dir, inv);
      syncDir(dir);
    });
    faultPoint(ctx, 'before-kill');

    if (opts.leaveRunning) {
      thaw(f);
    } else {
      killFrozen(f, log);
    }
    done = true;
    log.info(`dumped pid ${pid} to ${dir} in ${total().toFixed(1)} ms (frozen ${ctx.stats.frozenMs!.toFixed(1)} ms)`);
    return { pid, imagesDir: dir, stats: ctx.stats, killed: !opts.leaveRunning };
  } finally {
    writer?.abort();
    await pool.close();
    if (!done && frozen) {
      thaw(frozen);
      log.warn(`dump of ${pid} failed; the process was left running`);
    }
  }
}

/** SIGKILL while still stopped, then collect the exit as its tracer. */
function killFrozen(f: Frozen, log: Logger): void {
  native.kill(f.pid, SIG.KILL);
  for (const tid of f.tids) {
    try {
      native.waitpid(tid, 0);
    } catch (e) {
      log.debug(`waitpid(${tid}) after kill: ${(e as Error).message}`);
    }
  }
}
