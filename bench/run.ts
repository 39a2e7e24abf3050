// criu-ts bench: raw limits (process_vm_readv, zstd on one core and on the worker pool, disk
// write + fsync), then dump and restore of victims with N MiB of touched memory, all in one
// run on this machine. Prints a table (and JSON with --json); writes bench/results/latest.json.
//
//   npm run bench -- [--sizes 64M,1G,4G] [--quick] [--reps N] [--json] [--dir DIR] [--out FILE]
//                    [--sample 256M] [--level 3] [--threads N] [--no-limits] [--no-restore]
//                    [--keep] [--wait-idle S] [--retries N] [--max-others C] [--nice=N]
//
// Per size: one victim; `reps` times the raw limits then a dump (--leave-running, so that the
// victim stays for the next repetition); the victim is killed and reaped (its PID must be
// free); then `reps` restores of the last image set, each killed and reaped. The tables show
// the median repetition, and the dump's share of the slowest limit is the median of each
// repetition's dump against the limits measured just before it.
import { rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, commonSettings, machine, median, parseSize, report, runBench, type Machine } from './script.js';
import { phaseRunner, setNice, type Load } from './phase.js';

export type { Load } from './phase.js';
import { native } from '../src/kernel/native.js';
import { PR } from '../src/kernel/syscalls.js';
import { runDump, runRestore, type DumpResult, type RestoreResult } from './cases.js';
import { measureLimits, type Limits } from './limits.js';
import { fmtSize, renderTables } from './report.js';
import { buildVictim, startVictim, stopVictim } from './victim.js';

const MiB = 1 << 20;


export interface DumpRep {
  limits?: Limits;
  dump: DumpResult;
  load: { limits?: Load; dump: Load };
  /** dump GB/s (wall, pages stage) / the slowest limit of this repetition. */
  ofSlowest?: { wall: number; pages: number };
}

export interface RestoreRep {
  restore: RestoreResult;
  load: Load;
}

export interface CaseResult {
  bytes: number;
  victimFillMs: number;
  dumps: DumpRep[];
  restores: RestoreRep[];
  /** The median repetitions (by slowest limit, dump wall GB/s, restore wall GB/s). */
  limits?: Limits;
  dump?: DumpResult;
  restore?: RestoreResult;
  load: { limits?: Load; dump?: Load; restore?: Load };
  /** Medians over the repetitions of each one's dump against its own limits. */
  ofSlowest?: { wall: number; pages: number };
  /** Dump and restore GB/s (wall) over the repetitions. */
  spread?: { dump?: [number, number]; restore?: [number, number] };
  error?: string;
}

export interface BenchResult {
  startedAt: string;
  durationMs: number;
  machine: Machine & { imagesFs: string };
  options: {
    sizes: number[];
    quick: boolean;
    reps: number;
    level: number;
    threads?: number;
    sampleBytes: number;
    imagesBase: string;
    waitIdleS: number;
    retries: number;
    maxOthers: number;
    nice: number;
  };
  cases: CaseResult[];
}

function fsType(dir: string): string {
  const types: Record<number, string> = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs' };
  const t = statfsSync(dir).type;
  return types[t] ?? `fs 0x${t.toString(16)}`;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** The element whose key is the (lower) median. */
function medianBy<T>(xs: T[], key: (x: T) => number): T | undefined {
  const s = [...xs].sort((a, b) => key(a) - key(b));
  return s[(s.length - 1) >> 1];
}

const usage = `usage: npm run bench -- [options]
  --sizes LIST    victim sizes, e.g. 64M,1G,4G (default; --quick: 64M,256M)
  --quick         small sizes, one repetition, no retries: well under a minute
  --reps N        repetitions of limits + dump, and of the restore, per size (default 3;
                  --quick 1); the tables show the median
  --json          print the JSON result on stdout (the table then goes to stderr)
  --dir DIR       where image sets and the disk test go (default: the OS temp dir)
  --out FILE      JSON result file (default bench/results/latest.json)
  --sample SIZE   victim pages compressed for the zstd limits (default 256M; --quick 64M)
  --level N       zstd level (default 3)      --threads N   compression workers
  --no-limits     skip the raw limits         --no-restore  skip the restores
  --keep          keep the image sets
  --wait-idle S   before each phase, wait up to S seconds for other work on the machine
                  to stop (default 120; --quick 10; 0: never wait)
  --retries N     run a phase again (up to N times) when other work used more than
  --max-others C  C cores during it (defaults 2 and 0.25; --quick: 0 retries)
  --nice=N        run the bench (and its compression workers) at this nice value
                  (e.g. --nice=-10 on a shared machine; default 0)
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      sample: { type: 'string' },
      threads: { type: 'string' },
      'no-limits': { type: 'boolean', default: false },
      'no-restore': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      ...COMMON_OPTIONS,
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const { quick, reps, level, waitIdleS, retries, maxOthers, nice, base: imagesBase, outFile } = commonSettings(values, '', { reps: 3, waitIdleS: 120 });
  const sizes = (values.sizes ?? (quick ? '64M,256M' : '64M,1G,4G')).split(',').map(parseSize);
  const sampleBytes = parseSize(values.sample ?? (quick ? '64M' : '256M'));
  const threads = values.threads ? Number(values.threads) : undefined;

  // Restored processes are our children; anything orphaned comes back to us to be reaped.
  native.prctl(PR.SET_CHILD_SUBREAPER, 1);
  buildVictim();

  const started = Date.now();
  const result: BenchResult = {
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    machine: { ...machine(), imagesFs: fsType(imagesBase) },
    options: { sizes, quick, reps, level, threads, sampleBytes, imagesBase, waitIdleS, retries, maxOthers, nice },
    cases: [],
  };
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);

  const phase = phaseRunner({ waitIdleS, retries, maxOthers, progress });
  // Worker threads made since (zstd pool) run at the bench's priority too.
  const bumpPriority = () => setNice(nice);
  bumpPriority();

  try {
    for (const bytes of sizes) {
      const size = fmtSize(bytes);
      progress(`${size}: starting the victim`);
      const v = await startVictim(bytes / MiB);
      const c: CaseResult = { bytes, victimFillMs: v.fillMs, dumps: [], restores: [], load: {} };
      result.cases.push(c);
      const imagesDir = join(imagesBase, `dump-${bytes / MiB}M`);
      const clearImages = () => rmSync(imagesDir, { recursive: true, force: true });
      try {
        for (let rep = 1; rep <= reps; rep++) {
          const tag = `${size} ${rep}/${reps}`;
          let limits: Limits | undefined;
          let limitsLoad: Load | undefined;
          if (!values['no-limits']) {
            progress(`${tag}: raw limits`);
            bumpPriority();
            [limits, limitsLoad] = await phase(`${tag}: limits`, () =>
              measureLimits(v, { level, threads, sampleBytes: Math.min(sampleBytes, bytes), minReadBytes: quick ? 256 * MiB : 1 << 30, imagesBase }),
            );
            gc();
          }
          progress(`${tag}: dump`);
          clearImages();
          // --leave-running: the victim stays for the next repetition, or a retry.
          const [dump, dumpLoad] = await phase(`${tag}: dump`, () => runDump(v, imagesDir, { level, threads }), clearImages);
          gc();
          const r: DumpRep = { limits, dump, load: { limits: limitsLoad, dump: dumpLoad } };
          if (limits) r.ofSlowest = { wall: dump.wall.gbps / limits.slowest.gbps, pages: dump.pages.gbps / limits.slowest.gbps };
          c.dumps.push(r);
        }
        await stopVictim(v); // the restore needs its PID
        if (!values['no-restore']) {
          for (let rep = 1; rep <= reps; rep++) {
            const tag = `${size} ${rep}/${reps}`;
            progress(`${tag}: restore`);
            const [restore, load] = await phase(`${tag}: restore`, () => runRestore(imagesDir));
            c.restores.push({ restore, load });
          }
        }
      } catch (e) {
        c.error = (e as Error).stack ?? String(e);
        progress(`${size}: failed: ${c.error}`);
      } finally {
        await stopVictim(v);
        if (!values.keep) clearImages();
      }
      summarize(c);
    }
  } finally {
    if (!values.keep) rmSync(imagesBase, { recursive: true, force: true });
  }
  result.durationMs = Date.now() - started;

  report(result, outFile, values.json!, renderTables, progress);
}

/** The median repetitions into the case's top-level fields. */
function summarize(c: CaseResult): void {
  const withLimits = c.dumps.filter((d) => d.limits);
  const ml = medianBy(withLimits, (d) => d.limits!.slowest.gbps);
  if (ml) {
    c.limits = ml.limits;
    c.load.limits = ml.load.limits;
  }
  const md = medianBy(c.dumps, (d) => d.dump.wall.gbps);
  if (md) {
    c.dump = md.dump;
    c.load.dump = md.load.dump;
  }
  const ratios = c.dumps.filter((d) => d.ofSlowest);
  if (ratios.length) c.ofSlowest = { wall: median(ratios.map((d) => d.ofSlowest!.wall)), pages: median(ratios.map((d) => d.ofSlowest!.pages)) };
  const mr = medianBy(c.restores, (r) => r.restore.wall.gbps);
  if (mr) {
    c.restore = mr.restore;
    c.load.restore = mr.load;
  }
  const range = (xs: number[]): [number, number] | undefined => (xs.length ? [Math.min(...xs), Math.max(...xs)] : undefined);
  c.spread = { dump: range(c.dumps.map((d) => d.dump.wall.gbps)), restore: range(c.restores.map((r) => r.restore.wall.gbps)) };
}

runBench('bench', main);
