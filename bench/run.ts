// criu-ts bench: raw limits (process_vm_readv, zstd on one core and on the worker pool, disk
// write + fsync), then dump and restore of victims with N MiB of touched memory, all in one
// run on this machine. Prints a table (and JSON with --json); writes bench/results/latest.json.
//
//   npm run bench -- [--sizes 64M,1G,4G] [--quick] [--json] [--dir DIR] [--out FILE]
//                    [--sample 256M] [--level 3] [--threads N] [--no-limits] [--no-restore] [--keep]
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { native } from '../src/kernel/native.js';
import { PR } from '../src/kernel/syscalls.js';
import { packageRoot } from '../src/paths.js';
import { runDump, runRestore, type DumpResult, type RestoreResult } from './cases.js';
import { othersSince, snapshot, waitIdle } from './cpu.js';
import { measureLimits, type Limits } from './limits.js';
import { fmtSize, renderTables } from './report.js';
import { buildVictim, startVictim } from './victim.js';

const MiB = 1 << 20;

/** Other work on the machine during a phase, and how long we waited for it to calm down. */
export interface Load {
  /** Cores' worth of CPU used by everything but this process during the phase. */
  otherCores: number;
  /** Cores' worth of CPU used by this process (all its threads) during the phase. */
  ownCores: number;
  waitedMs: number;
  /** False when the machine was still busy after --wait-idle seconds. */
  wasIdle: boolean;
}

export interface CaseResult {
  bytes: number;
  victimFillMs: number;
  limits?: Limits;
  dump?: DumpResult;
  restore?: RestoreResult;
  load: { limits?: Load; dump?: Load; restore?: Load };
  error?: string;
}

export interface BenchResult {
  startedAt: string;
  durationMs: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memGiB: number;
    kernel: string;
    node: string;
    imagesFs: string;
  };
  options: { sizes: number[]; quick: boolean; level: number; threads?: number; sampleBytes: number; imagesBase: string; waitIdleS: number };
  cases: CaseResult[];
}

/** "64M", "1G", "512K", "1.5G", "256" (MiB): bytes, a whole number of MiB. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size "${s}" (use e.g. 64M, 1G)`);
  const unit = { '': MiB, K: 1024, M: MiB, G: 1 << 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const b = Math.round(Number(m[1]) * unit);
  if (b < MiB || b % MiB) throw new Error(`size "${s}" must be a whole number of MiB, at least 1 MiB`);
  return b;
}

function fsType(dir: string): string {
  const types: Record<number, string> = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs' };
  const t = statfsSync(dir).type;
  return types[t] ?? `fs 0x${t.toString(16)}`;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      dir: { type: 'string' },
      out: { type: 'string' },
      sample: { type: 'string' },
      level: { type: 'string', default: '3' },
      threads: { type: 'string' },
      'no-limits': { type: 'boolean', default: false },
      'no-restore': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'wait-idle': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'usage: npm run bench -- [options]',
        '  --sizes LIST    victim sizes, e.g. 64M,1G,4G (default; --quick: 64M,256M)',
        '  --quick         small sizes and samples: well under a minute',
        '  --json          print the JSON result on stdout (the table then goes to stderr)',
        '  --dir DIR       where image sets and the disk test go (default: the OS temp dir)',
        '  --out FILE      JSON result file (default bench/results/latest.json)',
        '  --sample SIZE   victim pages compressed for the zstd limits (default 256M; --quick 32M)',
        '  --level N       zstd level (default 3)      --threads N   compression workers',
        '  --no-limits     skip the raw limits         --no-restore  skip the restores',
        '  --keep          keep the image sets',
        '  --wait-idle S   before each phase, wait up to S seconds for other work on the machine',
        '                  to stop (default 120; --quick 10; 0: never wait)',
        '',
      ].join('\n'),
    );
    return;
  }
  const quick = values.quick!;
  const sizes = (values.sizes ?? (quick ? '64M,256M' : '64M,1G,4G')).split(',').map(parseSize);
  const sampleBytes = parseSize(values.sample ?? (quick ? '32M' : '256M'));
  const level = Number(values.level);
  const threads = values.threads ? Number(values.threads) : undefined;
  const waitIdleS = Number(values['wait-idle'] ?? (quick ? 10 : 120));
  const imagesBase = mkdtempSync(join(resolve(values.dir ?? tmpdir()), 'criu-ts-bench-'));
  const outFile = resolve(values.out ?? join(packageRoot(), 'bench', 'results', 'latest.json'));

  // Restored processes are our children; anything orphaned comes back to us to be reaped.
  native.prctl(PR.SET_CHILD_SUBREAPER, 1);
  buildVictim();

  const started = Date.now();
  const result: BenchResult = {
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? '?',
      memGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
      imagesFs: fsType(imagesBase),
    },
    options: { sizes, quick, level, threads, sampleBytes, imagesBase, waitIdleS },
    cases: [],
  };
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  /** Runs one phase after waiting for the machine to be idle; records the load during it. */
  const phase = async <T>(c: CaseResult, name: keyof CaseResult['load'], fn: () => Promise<T>): Promise<T> => {
    const w = waitIdleS > 0 ? await waitIdle(waitIdleS * 1000) : { waitedMs: 0, idle: true };
    if (!w.idle) progress(`warning: the machine is still busy after ${waitIdleS} s; measuring anyway`);
    const s = snapshot();
    try {
      return await fn();
    } finally {
      c.load[name] = { ...othersSince(s), waitedMs: w.waitedMs, wasIdle: w.idle };
    }
  };

  try {
    for (const bytes of sizes) {
      progress(`${fmtSize(bytes)}: starting the victim`);
      const v = await startVictim(bytes / MiB);
      const c: CaseResult = { bytes, victimFillMs: v.fillMs, load: {} };
      result.cases.push(c);
      const imagesDir = join(imagesBase, `dump-${bytes / MiB}M`);
      try {
        if (!values['no-limits']) {
          progress(`${fmtSize(bytes)}: raw limits`);
          c.limits = await phase(c, 'limits', () =>
            measureLimits(v, { level, threads, sampleBytes: Math.min(sampleBytes, bytes), minReadBytes: quick ? 256 * MiB : 1 << 30, imagesBase }),
          );
          gc();
        }
        progress(`${fmtSize(bytes)}: dump`);
        c.dump = await phase(c, 'dump', () => runDump(v, imagesDir, { level, threads }));
        gc();
        if (!values['no-restore']) {
          progress(`${fmtSize(bytes)}: restore`);
          c.restore = await phase(c, 'restore', () => runRestore(imagesDir));
        }
      } catch (e) {
        c.error = (e as Error).stack ?? String(e);
        progress(`${fmtSize(bytes)}: failed: ${c.error}`);
      } finally {
        await v.target.stop();
        if (!values.keep) rmSync(imagesDir, { recursive: true, force: true });
      }
    }
  } finally {
    if (!values.keep) rmSync(imagesBase, { recursive: true, force: true });
  }
  result.durationMs = Date.now() - started;

  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  // With --json, stdout is the JSON alone and the table goes to stderr.
  if (values.json) {
    process.stderr.write(renderTables(result) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    process.stdout.write(renderTables(result) + '\n');
  }
  progress(`results in ${outFile}`);
  if (result.cases.some((c) => c.error)) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
