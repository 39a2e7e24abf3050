// criu-ts pre-dump bench: per victim size and write rate, a chain of pre-dump passes and a
// final dump; per pass the frozen time, wall time and pages written/saved; the final dump's
// frozen time; and the victim's own store throughput untracked vs tracked. Prints tables (and
// JSON with --json); writes bench/results/predump-latest.json.
//
//   npm run bench:predump -- [--sizes 1G,4G] [--rates 0.1,1,10] [--passes 3] [--interval 1000]
//                            [--kill-rates 1] [--quick] [--json] [--dir DIR] [--out FILE] [--level 3]
//                            [--final-level N] [--repeat N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { machine, parseSize, report, runBench, type Machine } from './script.js';
import { native } from '../src/kernel/native.js';
import { PR } from '../src/kernel/syscalls.js';
import { createLogger } from '../src/log.js';
import { packageRoot } from '../src/paths.js';
import { buildPredumpVictim, runPredumpCase, startPredumpVictim, type PredumpCaseResult } from './predump-case.js';
import { renderPredumpTables } from './predump-report.js';
import { kernelCosts, type KernelCosts } from './kernel-costs.js';

const MiB = 1 << 20;

export interface PredumpBenchResult {
  startedAt: string;
  durationMs: number;
  machine: Machine;
  /** What a syscall and a page fault cost here (older results lack it). */
  kernelCosts?: KernelCosts;
  options: { sizes: number[]; rates: number[]; passes: number; intervalMs: number; level: number; finalLevel?: number; repeat?: number; catchUp: boolean };
  /** Each chain in turn; with --repeat, `run` numbers the runs of one size, rate and ending (from 1). */
  cases: Array<{ bytes: number; pct: number; kill?: boolean; run?: number; victimFillMs?: number; result?: PredumpCaseResult; error?: string }>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      rates: { type: 'string' },
      'kill-rates': { type: 'string', default: '1' },
      passes: { type: 'string', default: '3' },
      interval: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      dir: { type: 'string' },
      out: { type: 'string' },
      level: { type: 'string', default: '3' },
      'final-level': { type: 'string' },
      repeat: { type: 'string', default: '1' },
      'no-catch-up': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'usage: npm run bench:predump -- [options]',
        '  --sizes LIST     victim sizes (default 1G,4G; --quick 256M)',
        '  --rates LIST     % of the pages written per second (default 0.1,1,10)',
        '  --kill-rates L   rates of one more chain per size whose final dump kills the victim (default 1; "" none)',
        '  --passes N       pre-dump passes before the final dump (default 3)',
        '  --interval MS    time between passes, also the store-rate sampling window (default 1000)',
        '  --quick          small victim, short intervals',
        '  --json           print the JSON result on stdout (the tables then go to stderr)',
        '  --dir DIR        where the image sets go (default: the OS temp dir)',
        '  --out FILE       JSON result file (default bench/results/predump-latest.json)',
        '  --level N        zstd level of the passes (default 3)',
        "  --final-level N  the final dump's (default: the tool's, 0 = stored, for a tracked chain)",
        '  --repeat N       run each chain N times (a killing one on a new victim each time); the final',
        "                   table gives the median run's figures and the range of the final freeze",
        "  --no-catch-up    the final dump makes no catch-up pass before its freeze (see src/dump/catch-up.ts)",
        '',
      ].join('\n'),
    );
    return;
  }
  const quick = values.quick!;
  const sizes = (values.sizes ?? (quick ? '256M' : '1G,4G')).split(',').map(parseSize);
  const rates = (values.rates ?? '0.1,1,10').split(',').map(Number);
  const killRates = values['kill-rates']!.split(',').filter((x) => x !== '').map(Number);
  const passes = Number(values.passes);
  const intervalMs = Number(values.interval ?? (quick ? 300 : 1000));
  const level = Number(values.level);
  const finalLevel = values['final-level'] === undefined ? undefined : Number(values['final-level']);
  const repeat = Number(values.repeat);
  const catchUp = !values['no-catch-up'];
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat ${values.repeat}: a whole number of runs, 1 or more`);
  const base = mkdtempSync(join(resolve(values.dir ?? tmpdir()), 'criu-ts-bench-predump-'));
  const outFile = resolve(values.out ?? join(packageRoot(), 'bench', 'results', 'predump-latest.json'));
  const log = createLogger({ verbosity: 1, name: 'criu-ts' });
  const progress = (s: string) => process.stderr.write(`bench:predump: ${s}\n`);

  native.prctl(PR.SET_CHILD_SUBREAPER, 1);
  buildPredumpVictim();
  const started = Date.now();
  const result: PredumpBenchResult = {
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    machine: machine(),
    kernelCosts: kernelCosts(),
    options: { sizes, rates, passes, intervalMs, level, ...(finalLevel === undefined ? {} : { finalLevel }), ...(repeat > 1 ? { repeat } : {}), catchUp },
    cases: [],
  };
  try {
    for (const bytes of sizes) {
      // One victim per size: each rate's chain ends with dump --leave-running, then the rate
      // changes; the chains whose final dump kills it come last, each but the first on a new one.
      const runs = (pct: number, kill: boolean) => Array.from({ length: repeat }, (_, i) => ({ pct, kill, run: i + 1 }));
      const chains = [...rates.flatMap((pct) => runs(pct, false)), ...killRates.flatMap((pct) => runs(pct, true))];
      let v: Awaited<ReturnType<typeof startPredumpVictim>> | undefined;
      try {
        for (const { pct, kill, run } of chains) {
          if (!v) {
            progress(`${bytes / MiB} MiB: starting the victim`);
            v = await startPredumpVictim(bytes / MiB, pct);
            progress(`${bytes / MiB} MiB: filled in ${(v.fillMs / 1000).toFixed(1)} s`);
          }
          const c: PredumpBenchResult['cases'][number] = { bytes, pct, ...(kill ? { kill } : {}), ...(repeat > 1 ? { run } : {}), victimFillMs: v.fillMs };
          result.cases.push(c);
          progress(`${bytes / MiB} MiB at ${pct} %/s: ${passes} passes + final dump${kill ? ' (killing the victim)' : ''}${repeat > 1 ? `, run ${run} of ${repeat}` : ''}`);
          try {
            c.result = await runPredumpCase(v, pct, { passes, intervalMs, level, finalLevel, catchUp, imagesDir: join(base, `${bytes / MiB}M-${pct}${kill ? '-kill' : ''}-${run}`), log, kill });
            const f = c.result.final;
            progress(`  final dump frozen ${f.frozenMs.toFixed(1)} ms, ${f.pagesSaved} pages; slowdown ${(c.result.slowdown * 100).toFixed(1)} %`);
          } catch (e) {
            c.error = (e as Error).stack ?? String(e);
            progress(`  failed: ${c.error}`);
          }
          if (kill) {
            await v.target.stop(); // reaps it (killed by the dump, or not if it failed)
            v = undefined;
          }
        }
      } finally {
        await v?.target.stop();
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  result.durationMs = Date.now() - started;
  report(result, outFile, values.json!, renderPredumpTables, progress);
}

runBench('bench:predump', main);
