// `criu-ts dump -t PID -D DIR [--leave-running] [--shell-job] [--iterative ...]`
import type { Command } from 'commander';
import type { DumpResult } from '../dump/dump.js';
import type { IterativeResult } from '../dump/iterative.js';
import { createImageDir } from '../images/io.js';
import { defineCommand } from './command.js';
import { UsageError } from './errors.js';
import { commandLogger } from './images-log.js';
import { progressLine } from './progress.js';
import { optionalInt, requirePid, requireString } from './options.js';
import { NETWORK_LOCK_METHODS, type NetworkLockMethod } from '../net/lock.js';

export interface DumpCliOptions {
  pid: number;
  imagesDir: string;
  leaveRunning: boolean;
  shellJob: boolean;
  tcpEstablished: boolean;
  networkLock?: NetworkLockMethod;
  compressionLevel?: number;
  prevImagesDir?: string;
  trackMem: boolean;
  /** --no-catch-up (see src/dump/catch-up.ts). */
  catchUp?: boolean;
  /** --iterative: run pre-dump passes first (into DIR/pre-1 ...), see src/dump/iterative.ts. */
  iterative?: { maxPasses?: number; maxDowntimeMs?: number };
}

type Result = DumpResult | IterativeResult;
const isIterative = (r: Result): r is IterativeResult => 'passes' in r;

/** Test-only fault switch, like CRIU's fault injection: STAGE:fail or STAGE:kill. */
export const FAULT_ENV = 'CRIU_TS_FAULT';

export default defineCommand<DumpCliOptions, Result>({
  name: 'dump',
  summary: 'checkpoint a process to an image directory (and kill it, unless --leave-running)',
  help: [
    '',
    'The images are written and fsynced before the process is killed. A dump that fails at',
    'any point leaves the process running as it was.',
    '',
    'With --iterative, pre-dump passes run first while the process keeps running (into',
    'DIR/pre-1, DIR/pre-2, ...), each saving what was written since the one before, until the',
    'predicted freeze of the final dump fits --max-downtime (or after --max-passes); then the',
    'final dump (into DIR, parent pre-N) saves only what changed since the last pass.',
    '',
    'The final dump of a tracked chain first makes up to three more passes while the process',
    'runs, into DIR/catch-up, catch-up-2 ... (the last one its parent), when 16 MiB or more were',
    'written since the last pass: the freeze then saves only what was written during the last',
    'of them (--no-catch-up: none).',
  ].join('\n'),
  configure(cmd: Command) {
    cmd
      .requiredOption('-t, --tree <pid>', 'the process to dump')
      .requiredOption('-D, --images-dir <dir>', 'directory for the image set (created 0700)')
      .option('-R, --leave-running', 'leave the process running after the dump')
      .option('--shell-job', 'the std fds (terminal, pipes) belong to the shell: restore takes the restorer\'s')
      .option('--tcp-established', 'save established TCP connections (TCP_REPAIR); without it a process that has one is not dumped')
      .option('--network-lock <method>', `with --tcp-established: how their packets are held off until the restore (${NETWORK_LOCK_METHODS.join(', ')}; default nftables)`)
      .option('--prev-images-dir <dir>', 'the last pre-dump pass, relative to -D: save only what changed since')
      .option('--track-mem', 'part of an iterative migration (tracking follows from --prev-images-dir)')
      .option('--compression-level <n>', 'zstd level for page frames, -7 to 19; 0 stores them uncompressed (default 3; 0 for the final dump of a tracked chain)')
      .option('--no-catch-up', 'with --prev-images-dir: no catch-up passes into DIR/catch-up before the freeze (made when 16 MiB or more were written since the last pass)')
      .option('--iterative', 'run pre-dump passes first, until the final freeze fits --max-downtime')
      .option('--max-passes <n>', 'with --iterative: pre-dump passes at most (default 8)')
      .option('--max-downtime <ms>', 'with --iterative: memory downtime budget of the final dump (default 100)');
  },
  parse: (raw) => {
    const iterative = raw.iterative === true;
    if (!iterative && (raw.maxPasses !== undefined || raw.maxDowntime !== undefined)) throw new UsageError('--max-passes and --max-downtime go with --iterative');
    if (iterative && raw.prevImagesDir !== undefined) throw new UsageError('--iterative makes its own chain: it does not take --prev-images-dir');
    return {
      ...parseDump(raw),
      ...(iterative
        ? { iterative: { maxPasses: optionalInt(raw.maxPasses, '--max-passes', 1, 100), maxDowntimeMs: optionalInt(raw.maxDowntime, '--max-downtime', 0, 3_600_000) } }
        : {}),
    };
  },
  async run(o, ctx) {
    createImageDir(o.imagesDir);
    const log = commandLogger(ctx, o.imagesDir, 'dump.log');
    const progress = progressLine(ctx.io);
    try {
      if (o.iterative) {
        const { dumpIterative } = await import('../dump/iterative.js');
        return await dumpIterative({ ...o, ...o.iterative }, log, (l) => ctx.io.stderr(l + '\n'), ctx.env[FAULT_ENV]);
      }
      const { dump } = await import('../api/dump.js');
      return await dump({ ...o, log, fault: ctx.env[FAULT_ENV], onProgress: progress.onProgress });
    } finally {
      progress.end();
      if (log !== ctx.log) log.close();
    }
  },
  render: (r) => (isIterative(r) ? renderIterative(r) : renderDump(r)),
  json: (r) => r,
});

function parseDump(raw: Record<string, unknown>): DumpCliOptions {
  return {
    pid: requirePid(raw.tree, '-t/--tree'),
    imagesDir: requireString(raw.imagesDir, '-D/--images-dir'),
    leaveRunning: raw.leaveRunning === true,
    shellJob: raw.shellJob === true,
    tcpEstablished: raw.tcpEstablished === true,
    ...parseNetworkLock(raw.networkLock),
    compressionLevel: optionalInt(raw.compressionLevel, '--compression-level', -7, 19),
    ...(raw.prevImagesDir !== undefined ? { prevImagesDir: requireString(raw.prevImagesDir, '--prev-images-dir') } : {}),
    trackMem: raw.trackMem === true,
    ...(raw.catchUp === false ? { catchUp: false } : {}),
  };
}

function parseNetworkLock(v: unknown): { networkLock?: NetworkLockMethod } {
  if (v === undefined) return {};
  const m = NETWORK_LOCK_METHODS.find((x) => x === v);
  if (!m) throw new UsageError(`--network-lock must be one of ${NETWORK_LOCK_METHODS.join(', ')}`);
  return { networkLock: m };
}

function renderDump(r: DumpResult): string[] {
  return [
    `Dumped pid ${r.pid} to ${r.imagesDir}: ${(r.stats.pagesBytesRaw! / 1048576).toFixed(1)} MiB of pages in ${(
      r.stats.pagesBytesStored! / 1048576
    ).toFixed(1)} MiB, frozen ${r.stats.frozenMs!.toFixed(1)} ms${r.killed ? '' : ' (left running)'}.`,
    ...(r.catchUps ?? []).map((c) => `catch-up pass into ${c.dir}: ${c.stats.pagesSaved ?? 0} pages saved in ${(c.stats.totalMs ?? 0).toFixed(0)} ms while it ran`),
    ...r.notes.map((n) => `note: ${n}`),
  ];
}

function renderIterative(r: IterativeResult): string[] {
  const last = r.passes[r.passes.length - 1]!;
  const est = last.estimatedDowntimeMs === undefined ? '' : ` (estimated ${last.estimatedDowntimeMs.toFixed(1)} ms of memory copy)`;
  return [
    `${r.passes.length} pre-dump pass${r.passes.length === 1 ? '' : 'es'} in ${r.imagesDir}/pre-1..${r.passes.length}, stopped: ${r.stopReason}; ` +
      `final dump saved ${r.final.stats.pagesSaved ?? 0} pages, frozen ${r.final.stats.frozenMs!.toFixed(1)} ms${est}.`,
    ...renderDump(r.final),
    ...r.passes.flatMap((p) => p.notes.map((n) => `note: pass ${p.pass}: ${n}`)),
  ];
}
