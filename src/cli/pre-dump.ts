// `criu-ts pre-dump -t PID -D DIR [--prev-images-dir REL] [--stop]`
import type { Command } from 'commander';
import type { PreDumpResult } from '../dump/predump.js';
import { createImageDir } from '../images/io.js';
import { defineCommand } from './command.js';
import { FAULT_ENV } from './dump.js';
import { commandLogger } from './images-log.js';
import { progressLine } from './progress.js';
import { optionalInt, requirePid, requireString } from './options.js';

export interface PreDumpCliOptions {
  pid: number;
  imagesDir: string;
  prevImagesDir?: string;
  stop: boolean;
  compressionLevel?: number;
}

type Result = PreDumpResult | { stopped: boolean; reason?: string; pid: number };

export default defineCommand<PreDumpCliOptions, Result>({
  name: 'pre-dump',
  summary: 'copy memory while the process keeps running; later passes copy only what it wrote',
  help: [
    '',
    'The first pass starts write tracking (userfaultfd write-protect, async mode) and saves',
    'every page; each later pass (--prev-images-dir) saves the pages written since its',
    'parent. The process is stopped only to set tracking up. End a chain with',
    '`criu-ts dump --prev-images-dir ...`, or with `pre-dump --stop -D LAST` to just stop.',
  ].join('\n'),
  configure(cmd: Command) {
    cmd
      .requiredOption('-t, --tree <pid>', 'the process')
      .requiredOption('-D, --images-dir <dir>', 'directory for this pass (with --stop: the last pass of the chain)')
      .option('--prev-images-dir <dir>', 'the previous pass, relative to -D (as in CRIU)')
      .option('--stop', 'end the chain\'s write tracking; save nothing')
      .option('--compression-level <n>', 'zstd level for page frames, -7 to 19; 0 stores them uncompressed (default 3)');
  },
  parse: (raw) => ({
    pid: requirePid(raw.tree, '-t/--tree'),
    imagesDir: requireString(raw.imagesDir, '-D/--images-dir'),
    ...(raw.prevImagesDir !== undefined ? { prevImagesDir: requireString(raw.prevImagesDir, '--prev-images-dir') } : {}),
    stop: raw.stop === true,
    compressionLevel: optionalInt(raw.compressionLevel, '--compression-level', -7, 19),
  }),
  async run(o, ctx) {
    const { preDump, stopTracking } = await import('../api/dump.js');
    if (o.stop) return stopTracking({ pid: o.pid, imagesDir: o.imagesDir, log: ctx.log });
    createImageDir(o.imagesDir);
    const log = commandLogger(ctx, o.imagesDir, 'pre-dump.log');
    const progress = progressLine(ctx.io);
    try {
      return await preDump({ ...o, log, fault: ctx.env[FAULT_ENV], onProgress: progress.onProgress });
    } finally {
      progress.end();
      if (log !== ctx.log) log.close();
    }
  },
  render(r) {
    if ('stopped' in r) return [r.stopped ? `Write tracking of pid ${r.pid} ended.` : `Nothing stopped: ${r.reason}.`];
    const s = r.stats;
    return [
      `Pre-dumped pid ${r.pid} to ${r.imagesDir}: ${s.pagesSaved} pages saved (${((s.bytesStored ?? 0) / 1048576).toFixed(1)} MiB stored), ` +
        `${s.pagesWritten} written since the parent, frozen ${(s.frozenMs ?? 0).toFixed(1)} ms, total ${(s.totalMs ?? 0).toFixed(1)} ms.`,
      ...r.notes.map((n) => `note: ${n}`),
    ];
  },
  json: (r) => r,
  exitCode: (r) => ('stopped' in r && !r.stopped ? 1 : 0),
});
