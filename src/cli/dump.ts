// `criu-ts dump -t PID -D DIR [--leave-running] [--shell-job]`
import type { Command } from 'commander';
import type { DumpResult } from '../dump/dump.js';
import { createImageDir } from '../images/io.js';
import { defineCommand } from './command.js';
import { commandLogger } from './images-log.js';
import { optionalInt, requirePid, requireString } from './options.js';

export interface DumpCliOptions {
  pid: number;
  imagesDir: string;
  leaveRunning: boolean;
  shellJob: boolean;
  compressionLevel?: number;
  prevImagesDir?: string;
  trackMem: boolean;
}

/** Test-only fault switch, like CRIU's fault injection: STAGE:fail or STAGE:kill. */
export const FAULT_ENV = 'CRIU_TS_FAULT';

export default defineCommand<DumpCliOptions, DumpResult>({
  name: 'dump',
  summary: 'checkpoint a process to an image directory (and kill it, unless --leave-running)',
  help: [
    '',
    'The images are written and fsynced before the process is killed. A dump that fails at',
    'any point leaves the process running as it was.',
  ].join('\n'),
  configure(cmd: Command) {
    cmd
      .requiredOption('-t, --tree <pid>', 'the process to dump')
      .requiredOption('-D, --images-dir <dir>', 'directory for the image set (created 0700)')
      .option('-R, --leave-running', 'leave the process running after the dump')
      .option('--shell-job', 'the std fds (terminal, pipes) belong to the shell: restore takes the restorer\'s')
      .option('--prev-images-dir <dir>', 'the last pre-dump pass, relative to -D: save only what changed since')
      .option('--track-mem', 'part of an iterative migration (tracking follows from --prev-images-dir)')
      .option('--compression-level <n>', 'zstd level for page frames (default 3)');
  },
  parse: (raw) => ({
    pid: requirePid(raw.tree, '-t/--tree'),
    imagesDir: requireString(raw.imagesDir, '-D/--images-dir'),
    leaveRunning: raw.leaveRunning === true,
    shellJob: raw.shellJob === true,
    compressionLevel: optionalInt(raw.compressionLevel, '--compression-level', -7, 19),
    ...(raw.prevImagesDir !== undefined ? { prevImagesDir: requireString(raw.prevImagesDir, '--prev-images-dir') } : {}),
    trackMem: raw.trackMem === true,
  }),
  async run(o, ctx) {
    const { dump } = await import('../dump/dump.js');
    createImageDir(o.imagesDir);
    const log = commandLogger(ctx, o.imagesDir, 'dump.log');
    try {
      return await dump(o, log, ctx.env[FAULT_ENV]);
    } finally {
      if (log !== ctx.log) log.close();
    }
  },
  render: (r) => [
    `Dumped pid ${r.pid} to ${r.imagesDir}: ${(r.stats.pagesBytesRaw! / 1048576).toFixed(1)} MiB of pages in ${(
      r.stats.pagesBytesStored! / 1048576
    ).toFixed(1)} MiB, frozen ${r.stats.frozenMs!.toFixed(1)} ms${r.killed ? '' : ' (left running)'}.`,
    ...r.notes.map((n) => `note: ${n}`),
  ],
  json: (r) => r,
});
