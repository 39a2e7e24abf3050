// What every bench script shares: the options they all take, the settings read from them,
// writing the JSON result and printing the tables, and running main.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../src/paths.js';

/** parseArgs options common to the benches (spread into each script's own). */
export const COMMON_OPTIONS = {
  quick: { type: 'boolean', default: false },
  reps: { type: 'string' },
  json: { type: 'boolean', default: false },
  dir: { type: 'string' },
  out: { type: 'string' },
  level: { type: 'string', default: '3' },
  'wait-idle': { type: 'string' },
  retries: { type: 'string' },
  'max-others': { type: 'string' },
  nice: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type CommonValues = { [K in keyof typeof COMMON_OPTIONS]?: (typeof COMMON_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

export interface CommonSettings {
  quick: boolean;
  reps: number;
  level: number;
  waitIdleS: number;
  retries: number;
  maxOthers: number;
  nice: number;
  /** A fresh directory for the image sets, under --dir. */
  base: string;
  outFile: string;
}

/** The common settings, with this bench's defaults for repetitions and idle waits. */
export function commonSettings(values: CommonValues, name: string, d: { reps: number; waitIdleS: number }): CommonSettings {
  const quick = values.quick ?? false;
  return {
    quick,
    reps: Math.max(1, Number(values.reps ?? (quick ? 1 : d.reps))),
    level: Number(values.level ?? 3),
    waitIdleS: Number(values['wait-idle'] ?? (quick ? 10 : d.waitIdleS)),
    retries: Number(values.retries ?? (quick ? 0 : 2)),
    maxOthers: Number(values['max-others'] ?? 0.25),
    nice: Number(values.nice ?? 0),
    base: mkdtempSync(join(resolve(values.dir ?? tmpdir()), `criu-ts-bench-${name ? `${name}-` : ''}`)),
    outFile: resolve(values.out ?? join(packageRoot(), 'bench', 'results', `${name || 'latest'}${name ? '-latest' : ''}.json`)),
  };
}

/** Writes the result file and prints the tables (with --json: JSON on stdout, tables on stderr). */
export function report<R extends { cases: Array<{ error?: string }> }>(result: R, outFile: string, json: boolean, render: (r: R) => string, progress: (s: string) => void): void {
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  if (json) {
    process.stderr.write(render(result) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    process.stdout.write(render(result) + '\n');
  }
  progress(`results in ${outFile}`);
  if (result.cases.some((c) => c.error)) process.exitCode = 1;
}

/** Runs a bench's main; a failure is reported with the bench's name and sets the exit status. */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((e) => {
    process.stderr.write(`${name}: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  });
}

const MiB = 1 << 20;

/** "64M", "1G", "512K", "1.5G", "256" (MiB): bytes, a whole number of MiB. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size "${s}" (use e.g. 64M, 1G)`);
  const unit = { '': MiB, K: 1024, M: MiB, G: 1 << 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const b = Math.round(Number(m[1]) * unit);
  if (b < MiB || b % MiB) throw new Error(`size "${s}" must be a whole number of MiB, at least 1 MiB`);
  return b;
}

/** The median (0 for no values). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** What the tables' first line says about the machine. */
export interface Machine {
  cpus: number;
  cpuModel: string;
  memGiB: number;
  kernel: string;
  node: string;
}

export function machine(): Machine {
  return { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? '?', memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version };
}

/** The usage lines of the common output and load options (`name`: the result file's name). */
export function commonUsage(name: string, waitIdleS: number): string {
  return `  --json          print the JSON result on stdout (the tables then go to stderr)
  --dir DIR       where image sets go (default: the OS temp dir)
  --out FILE      JSON result file (default bench/results/${name}.json)
  --level N       zstd level (default 3)
  --wait-idle S   before each phase, wait up to S s for the machine to be idle
                  (default ${waitIdleS}; --quick 10; 0: never wait)
  --retries N     run a phase again (up to N times) when other work used more than
  --max-others C  C cores during it (defaults 2 and 0.25; --quick 0 retries)
  --nice=N        run the bench (and its workers) at this nice value (e.g. --nice=-10)
`;
}
