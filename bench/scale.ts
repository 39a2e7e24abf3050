// criu-ts threads-and-trees bench: dump and restore of victims (bench/scale-victim.c) with the
// same total memory as 1, 8 and 64 threads of one process, and as trees of 1, 4 and 16
// processes: how the cost grows per thread and per process. Prints tables (and JSON with
// --json); writes bench/results/scale-latest.json.
//
//   npm run bench:scale -- [--size 64M] [--threads 1,8,64] [--procs 1,4,16] [--quick] [--reps N]
//                          [--json] [--dir DIR] [--out FILE] [--level 3]
//                          [--wait-idle S] [--retries N] [--max-others C] [--nice=N]
//
// Per shape: one victim; `reps` dumps (--leave-running) into fresh directories; the tree is
// killed and reaped (its PIDs must be free); then `reps` restores of the last set, each checked
// (every process back, the root's thread count) then killed and reaped. Medians in the tables.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, commonSettings, commonUsage, machine, median, parseSize, report, runBench, type Machine } from './script.js';
import { dump } from '../src/dump/dump.js';
import { native } from '../src/kernel/native.js';
import { PR } from '../src/kernel/syscalls.js';
import { silentLogger } from '../src/log.js';
import { restore } from '../src/restore/restore.js';
import { startTarget } from '../test/helpers/target.js';
import { buildBenchBinary, killAll, phaseRunner, setNice, treePids, type Load } from './phase.js';
import { renderScaleTables } from './scale-report.js';

const MiB = 1 << 20;

export interface ScaleDump {
  wallMs: number;
  totalMs: number;
  frozenMs: number;
  pagesMs: number;
  rawBytes: number;
  imageBytes: number;
  load: Load;
}

export interface ScaleRestore {
  wallMs: number;
  totalMs: number;
  /**
   * Restore's stage times are those of the last process it built (stats.pagesMs and the
   * others are set per process, not summed): the page-filling time of a one-process victim only.
   */
  pagesMs?: number;
  load: Load;
}

export interface ScaleCase {
  threads: number;
  procs: number;
  bytes: number;
  victimStartMs: number;
  dumps: ScaleDump[];
  restores: ScaleRestore[];
  /** Medians over the repetitions. */
  dump?: { wallMs: number; totalMs: number; frozenMs: number; pagesMs: number; rawBytes: number; imageBytes: number; otherCores: number };
  restore?: { wallMs: number; totalMs: number; pagesMs?: number; otherCores: number };
  error?: string;
}

export interface ScaleBenchResult {
  startedAt: string;
  durationMs: number;
  machine: Machine;
  options: { bytes: number; threads: number[]; procs: number[]; quick: boolean; reps: number; level: number; waitIdleS: number; retries: number; maxOthers: number; nice: number };
  cases: ScaleCase[];
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += statSync(join(dir, f)).size;
  return n;
}

function threadCount(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

function stateOf(pid: number): string {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
}

/** Restores detached, checks every process is back (and the root's threads), kills and reaps them all. */
async function restoreOnce(imagesDir: string, pids: number[], threads: number): Promise<Omit<ScaleRestore, 'load'>> {
  const t0 = performance.now();
  const r = await restore({ imagesDir, detach: true, shellJob: true }, silentLogger);
  const wallMs = performance.now() - t0;
  try {
    for (const p of pids) {
      const st = stateOf(p);
      if (st !== 'S' && st !== 'R') throw new Error(`restored pid ${p} is in state ${st}`);
    }
    const n = threadCount(r.pid);
    if (n !== threads) throw new Error(`restored pid ${r.pid} has ${n} threads, not ${threads}`);
    return { wallMs, totalMs: r.stats.totalMs ?? 0, ...(pids.length === 1 ? { pagesMs: r.stats.pagesMs ?? 0 } : {}) };
  } finally {
    await killAll([...new Set([...treePids(r.pid), ...pids])]);
  }
}

const usage = `usage: npm run bench:scale -- [options]
  --size SIZE      total memory of every victim, split evenly between its processes (default 64M)
  --threads LIST   thread counts of a one-process victim (default 1,8,64)
  --procs LIST     process counts of a tree of one-thread processes (default 1,4,16)
  --quick          one repetition, short idle waits
  --reps N         dumps and restores per shape (default 7; --quick 1); the tables show medians
${commonUsage('scale-latest', 60)}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '64M' },
      threads: { type: 'string', default: '1,8,64' },
      procs: { type: 'string', default: '1,4,16' },
      ...COMMON_OPTIONS,
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const { quick, reps, level, waitIdleS, retries, maxOthers, nice, base, outFile } = commonSettings(values, 'scale', { reps: 7, waitIdleS: 60 });
  const bytes = parseSize(values.size!);
  const threadCounts = values.threads!.split(',').map(Number);
  const procCounts = values.procs!.split(',').map(Number);
  const progress = (s: string) => process.stderr.write(`bench:scale: ${s}\n`);
  const phase = phaseRunner({ waitIdleS, retries, maxOthers, progress });

  native.prctl(PR.SET_CHILD_SUBREAPER, 1);
  const binary = buildBenchBinary('scale-victim', 'scale-victim', ['-pthread']);
  setNice(nice);
  // The shapes: every thread count as one process, every process count with one thread each
  // (1 thread x 1 process once).
  const shapes: Array<{ threads: number; procs: number }> = [];
  for (const t of threadCounts) shapes.push({ threads: t, procs: 1 });
  for (const p of procCounts) if (!shapes.some((s) => s.threads === 1 && s.procs === p)) shapes.push({ threads: 1, procs: p });

  const started = Date.now();
  const result: ScaleBenchResult = {
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    machine: machine(),
    options: { bytes, threads: threadCounts, procs: procCounts, quick, reps, level, waitIdleS, retries, maxOthers, nice },
    cases: [],
  };
  try {
    for (const { threads, procs } of shapes) {
      const name = `${threads} thread${threads > 1 ? 's' : ''} x ${procs} process${procs > 1 ? 'es' : ''}`;
      const c: ScaleCase = { threads, procs, bytes, victimStartMs: 0, dumps: [], restores: [] };
      result.cases.push(c);
      const imagesDir = join(base, `t${threads}-p${procs}`);
      const clear = () => rmSync(imagesDir, { recursive: true, force: true });
      progress(`${name}: starting the victim`);
      const t0 = performance.now();
      const target = await startTarget(binary, [String(bytes / MiB), String(threads), String(procs)]);
      let pids: number[] = [target.pid];
      let victimGone = false;
      try {
        await target.waitFor('ready', 300_000);
        c.victimStartMs = performance.now() - t0;
        pids = (await target.waitFor(/^pids /)).split(' ').slice(1).map(Number);
        if (pids.length !== procs || pids[0] !== target.pid) throw new Error(`scale victim: bad pids line for ${procs} processes: ${pids.join(' ')}`);
        for (let rep = 1; rep <= reps; rep++) {
          progress(`${name} ${rep}/${reps}: dump`);
          clear();
          const [d, load] = await phase(
            `${name}: dump`,
            async () => {
              const ts = performance.now();
              const r = await dump({ pid: target.pid, imagesDir, leaveRunning: true, shellJob: true, compressionLevel: level }, silentLogger);
              const s = r.stats;
              return { wallMs: performance.now() - ts, totalMs: s.totalMs ?? 0, frozenMs: s.frozenMs ?? 0, pagesMs: s.pagesMs ?? 0, rawBytes: s.pagesBytesRaw ?? 0, imageBytes: dirBytes(imagesDir) };
            },
            clear,
          );
          c.dumps.push({ ...d, load });
        }
        // The restores need the PIDs: kill the whole tree (the root's shell reaps it, we the rest).
        const all = [...new Set([...treePids(target.pid), ...pids])];
        await target.stop();
        await killAll(all);
        victimGone = true;
        for (let rep = 1; rep <= reps; rep++) {
          progress(`${name} ${rep}/${reps}: restore`);
          const [r, load] = await phase(`${name}: restore`, () => restoreOnce(imagesDir, pids, threads));
          c.restores.push({ ...r, load });
        }
      } catch (e) {
        c.error = (e as Error).stack ?? String(e);
        progress(`${name}: failed: ${c.error}`);
      } finally {
        // (Once gone, its PIDs may be anybody's: never signal them again.)
        if (!victimGone) {
          const all = [...new Set([...treePids(target.pid), ...pids])];
          await target.stop();
          await killAll(all).catch((e) => progress(`cleanup: ${(e as Error).message}`));
        }
        clear();
      }
      if (c.dumps.length) {
        const m = (k: keyof Omit<ScaleDump, 'load'>) => median(c.dumps.map((d) => d[k]));
        c.dump = { wallMs: m('wallMs'), totalMs: m('totalMs'), frozenMs: m('frozenMs'), pagesMs: m('pagesMs'), rawBytes: m('rawBytes'), imageBytes: m('imageBytes'), otherCores: median(c.dumps.map((d) => d.load.otherCores)) };
      }
      if (c.restores.length) {
        c.restore = { wallMs: median(c.restores.map((r) => r.wallMs)), totalMs: median(c.restores.map((r) => r.totalMs)), otherCores: median(c.restores.map((r) => r.load.otherCores)) };
        if (procs === 1) c.restore.pagesMs = median(c.restores.map((r) => r.pagesMs ?? 0));
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  result.durationMs = Date.now() - started;
  report(result, outFile, values.json!, renderScaleTables, progress);
}

runBench('bench:scale', main);
