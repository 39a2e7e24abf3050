// criu-ts lazy-restore bench: per size, one dump of a victim (bench/lazy-victim.c), then
// eager and lazy restores of it in turn, with the raw limits of page filling (UFFDIO_COPY,
// decompression) measured in the same run. Prints tables (and JSON with --json); writes
// bench/results/lazy-latest.json.
//
//   npm run bench:lazy -- [--sizes 64M,1G,4G] [--quick] [--reps N] [--touches N] [--json]
//                         [--dir DIR] [--out FILE] [--sample 256M] [--level 3] [--no-limits]
//                         [--wait-idle S] [--retries N] [--max-others C] [--nice=N]
//
// Each restore: restore({ detach, lazy? }) in this process, three ways: eager; lazy, where as
// soon as the process runs (onResumed) the bench sends it SIGUSR1 and the victim at once reads
// one word in each of --touches scattered pages, timing every first touch, and writes what it
// saw to a file; and lazy-idle, where the process touches nothing until all memory is in (the
// background fill alone). A lazy restore() returns when all memory is in (it serves the pages
// inline): its stats give the time to resume (totalMs) and the server's side (lazy*).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, commonSettings, commonUsage, machine, median, parseSize, report, runBench, type Machine } from './script.js';
import { dump } from '../src/dump/dump.js';
import { native } from '../src/kernel/native.js';
import { PR, SIG } from '../src/kernel/syscalls.js';
import { silentLogger } from '../src/log.js';
import { restore } from '../src/restore/restore.js';
import { startTarget } from '../test/helpers/target.js';
import { measureLazyLimits, type LazyLimits } from './lazy-limits.js';
import { renderLazyTables } from './lazy-report.js';
import { buildBenchBinary, killAll, phaseRunner, setNice, treePids, type Load } from './phase.js';
import { fmtSize } from './report.js';
import { waitGone } from './victim.js';

const MiB = 1 << 20;

/** What the victim saw, in µs / ms. */
export interface Touches {
  touches: number;
  /** Touches whose page was not in yet (mincore): served by the lazy server. */
  faulted: number;
  faultedP50Us: number;
  faultedP99Us: number;
  faultedMaxUs: number;
  faultedMeanUs: number;
  /** Every first touch, faulted or not. */
  allP50Us: number;
  allP99Us: number;
  allMaxUs: number;
  /** From the bench's onResumed to the victim's first touch (signal delivery, wake-up). */
  startMs: number;
  /** The whole touch loop. */
  loopMs: number;
  /** The words read matched those hashed before the dump. */
  hashOk: boolean;
}

export type Mode = 'eager' | 'lazy' | 'lazy-idle';
export const MODES: readonly Mode[] = ['eager', 'lazy', 'lazy-idle'];

export interface RestoreRun {
  /** lazy-idle: lazy, but the process touches nothing until all is in (SIGUSR1 afterwards). */
  mode: Mode;
  /** Restore start to the process running (stats.totalMs). */
  resumeMs: number;
  /** Restore start until all memory is in: eager, about resumeMs; lazy, until the server is done. */
  allInMs: number;
  /** restore() call, wall. */
  wallMs: number;
  touches: Touches;
  rssBytes: number;
  /** Lazy only: the server's numbers. */
  lazy?: {
    faults: number;
    faultBytes: number;
    pushedBytes: number;
    zeroBytes: number;
    serverP50Us: number;
    serverP99Us: number;
    completeMs: number;
    /** pushedBytes / completeMs, 1e9 bytes/s: the background fill rate. */
    fillGBps: number;
    /** (faultBytes + pushedBytes) / completeMs: all that the server put in, per second. */
    inGBps: number;
  };
  stats: Record<string, number>;
  load: Load;
}

export interface LazyCase {
  bytes: number;
  victimFillMs: number;
  dump?: { wallMs: number; rawBytes: number; storedBytes: number };
  limits?: LazyLimits;
  limitsLoad?: Load;
  runs: RestoreRun[];
  /** Per mode, the median of each number over the repetitions. */
  summary: Partial<Record<Mode, Summary>>;
  error?: string;
}

export type Summary = Omit<RestoreRun, 'mode' | 'stats' | 'load' | 'touches' | 'lazy'> & {
  touches: Touches;
  lazy?: NonNullable<RestoreRun['lazy']>;
  otherCores: number;
  attempts: number;
};

export interface LazyBenchResult {
  startedAt: string;
  durationMs: number;
  machine: Machine;
  options: { sizes: number[]; quick: boolean; reps: number; touches: number; level: number; sampleBytes: number; waitIdleS: number; retries: number; maxOthers: number; nice: number };
  cases: LazyCase[];
}

/** The median of every numeric field (recursively) over runs of one mode. */
function summarize(runs: RestoreRun[]): Summary | undefined {
  if (!runs.length) return undefined;
  const med = <T extends object>(objs: T[]): T => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(objs[0]!)) {
      if (typeof v === 'number') out[k] = median(objs.map((o) => (o as Record<string, number>)[k]!));
      else if (typeof v === 'boolean') out[k] = objs.every((o) => (o as Record<string, boolean>)[k]);
      else if (v && typeof v === 'object' && k !== 'stats') out[k] = med(objs.map((o) => (o as Record<string, object>)[k]!));
    }
    return out as T;
  };
  const { mode: _m, stats: _s, load: _l, ...rest } = med(runs);
  return { ...rest, otherCores: median(runs.map((r) => r.load.otherCores)), attempts: Math.max(...runs.map((r) => r.load.attempts)) };
}

function parseReport(text: string): Record<string, string> {
  const kv: Record<string, string> = {};
  const parts = text.trim().split(/\s+/);
  for (let i = 0; i + 1 < parts.length; i += 2) kv[parts[i]!] = parts[i + 1]!;
  return kv;
}

async function waitFile(path: string, timeoutMs: number, pid: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (!existsSync(`/proc/${pid}`)) throw new Error(`the restored victim ${pid} is gone before it reported`);
    if (Date.now() > deadline) throw new Error(`the restored victim ${pid} did not report in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return readFileSync(path, 'utf8');
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** One restore; the victim touches its pages from the moment it runs; then killed and reaped. */
async function restoreOnce(mode: Mode, imagesDir: string, resultPath: string): Promise<Omit<RestoreRun, 'load'>> {
  rmSync(resultPath, { force: true });
  let resumedNs = 0n;
  let pid = 0;
  const t0 = performance.now();
  let r: Awaited<ReturnType<typeof restore>>;
  try {
    r = await restore(
      {
        imagesDir,
        detach: true,
        shellJob: true,
        lazy: mode !== 'eager',
        onResumed: (p) => {
          resumedNs = process.hrtime.bigint();
          pid = p;
          if (mode !== 'lazy-idle') native.kill(p, SIG.USR1);
        },
      },
      silentLogger,
    );
  } catch (e) {
    if (pid) await killAll(treePids(pid));
    throw e;
  }
  const wallMs = performance.now() - t0;
  try {
    if (mode === 'lazy-idle') native.kill(r.pid, SIG.USR1); // all in: the touches only check the words
    const kv = parseReport(await waitFile(resultPath, 120_000, r.pid));
    const num = (k: string) => {
      const v = Number(kv[k]);
      if (!Number.isFinite(v)) throw new Error(`victim report: no ${k} in ${JSON.stringify(kv)}`);
      return v;
    };
    const us = (k: string) => num(k) / 1000;
    const touches: Touches = {
      touches: num('touches'),
      faulted: num('faulted'),
      faultedP50Us: us('flt_p50_ns'),
      faultedP99Us: us('flt_p99_ns'),
      faultedMaxUs: us('flt_max_ns'),
      faultedMeanUs: us('flt_mean_ns'),
      allP50Us: us('all_p50_ns'),
      allP99Us: us('all_p99_ns'),
      allMaxUs: us('all_max_ns'),
      startMs: Number(BigInt(kv.go_ns!) - resumedNs) / 1e6,
      loopMs: (num('end_ns') - num('go_ns')) / 1e6,
      hashOk: kv.hash === 'ok',
    };
    if (!touches.hashOk) throw new Error(`${mode} restore: the victim read other words than it had before the dump`);
    const s = r.stats;
    const resumeMs = s.totalMs ?? 0;
    const run: Omit<RestoreRun, 'load'> = { mode, resumeMs, allInMs: wallMs, wallMs, touches, rssBytes: rssOf(r.pid), stats: s };
    if (mode !== 'eager') {
      const completeMs = s.lazyCompleteMs ?? 0;
      run.lazy = {
        faults: s.lazyFaults ?? 0,
        faultBytes: s.lazyFaultBytes ?? 0,
        pushedBytes: s.lazyPushedBytes ?? 0,
        zeroBytes: s.lazyZeroBytes ?? 0,
        serverP50Us: s.lazyFaultP50Us ?? 0,
        serverP99Us: s.lazyFaultP99Us ?? 0,
        completeMs,
        fillGBps: completeMs > 0 ? (s.lazyPushedBytes ?? 0) / completeMs / 1e6 : 0,
        inGBps: completeMs > 0 ? ((s.lazyPushedBytes ?? 0) + (s.lazyFaultBytes ?? 0)) / completeMs / 1e6 : 0,
      };
    }
    return run;
  } finally {
    await killAll(treePids(r.pid));
  }
}

const usage = `usage: npm run bench:lazy -- [options]
  --sizes LIST    victim sizes (default 64M,1G,4G; --quick 64M,256M)
  --quick         small sizes, one repetition, short idle waits: about a minute
  --reps N        restores per size and mode (eager; lazy, touching pages at once; lazy, idle
                  until all is in) (default 3; --quick 1); the tables show medians
  --touches N     pages the victim reads right after resume (default 4096)
  --sample SIZE   bytes for the raw limits (default 512M; --quick 64M)
  --no-limits     skip the raw limits
${commonUsage('lazy-latest', 120)}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      touches: { type: 'string', default: '4096' },
      sample: { type: 'string' },
      'no-limits': { type: 'boolean', default: false },
      ...COMMON_OPTIONS,
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const { quick, reps, level, waitIdleS, retries, maxOthers, nice, base, outFile } = commonSettings(values, 'lazy', { reps: 3, waitIdleS: 120 });
  const sizes = (values.sizes ?? (quick ? '64M,256M' : '64M,1G,4G')).split(',').map(parseSize);
  const touches = Number(values.touches);
  const sampleBytes = parseSize(values.sample ?? (quick ? '64M' : '512M'));
  const progress = (s: string) => process.stderr.write(`bench:lazy: ${s}\n`);
  const phase = phaseRunner({ waitIdleS, retries, maxOthers, progress });

  // Restored processes are our children; orphans come back to us to be reaped.
  native.prctl(PR.SET_CHILD_SUBREAPER, 1);
  const binary = buildBenchBinary('lazy-victim', 'lazy-victim');
  setNice(nice);
  const started = Date.now();
  const result: LazyBenchResult = {
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    machine: machine(),
    options: { sizes, quick, reps, touches, level, sampleBytes, waitIdleS, retries, maxOthers, nice },
    cases: [],
  };
  try {
    for (const bytes of sizes) {
      const size = fmtSize(bytes);
      const imagesDir = join(base, `dump-${bytes / MiB}M`);
      const resultPath = join(base, `touches-${bytes / MiB}M.txt`);
      progress(`${size}: starting the victim`);
      const t0 = performance.now();
      const target = await startTarget(binary, [String(bytes / MiB), String(touches), resultPath]);
      const c: LazyCase = { bytes, victimFillMs: 0, runs: [], summary: {} };
      result.cases.push(c);
      let victimGone = false;
      try {
        await target.waitFor('ready', 600_000);
        c.victimFillMs = performance.now() - t0;
        progress(`${size}: dump`);
        const td = performance.now();
        const d = await dump({ pid: target.pid, imagesDir, leaveRunning: true, shellJob: true, compressionLevel: level }, silentLogger);
        c.dump = { wallMs: performance.now() - td, rawBytes: d.stats.pagesBytesRaw ?? 0, storedBytes: d.stats.pagesBytesStored ?? 0 };
        await target.stop(); // the restores need its PID
        await waitGone(target.pid);
        victimGone = true;
        if (!values['no-limits']) {
          progress(`${size}: raw limits`);
          [c.limits, c.limitsLoad] = await phase(`${size}: limits`, async () => measureLazyLimits(imagesDir, target.pid, sampleBytes));
          (globalThis as { gc?: () => void }).gc?.();
        }
        for (let rep = 1; rep <= reps; rep++) {
          for (const mode of MODES) {
            const tag = `${size} ${rep}/${reps}: ${mode} restore`;
            progress(tag);
            const [run, load] = await phase(tag, () => restoreOnce(mode, imagesDir, resultPath));
            c.runs.push({ ...run, load });
            (globalThis as { gc?: () => void }).gc?.();
          }
        }
      } catch (e) {
        c.error = (e as Error).stack ?? String(e);
        progress(`${size}: failed: ${c.error}`);
      } finally {
        // (Once gone, its PID is the restored process's or anybody's: never signal it again.)
        if (!victimGone) await target.stop();
        rmSync(imagesDir, { recursive: true, force: true });
      }
      for (const mode of MODES) c.summary[mode] = summarize(c.runs.filter((r) => r.mode === mode));
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  result.durationMs = Date.now() - started;
  report(result, outFile, values.json!, renderLazyTables, progress);
}

runBench('bench:lazy', main);
