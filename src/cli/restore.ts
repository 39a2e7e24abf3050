// `criu-ts restore -D DIR [-d] [--shell-job]`
import type { Command } from 'commander';
import type { RestoreResult } from '../restore/restore.js';
import { defineCommand } from './command.js';
import { FAULT_ENV } from './dump.js';
import { commandLogger } from './images-log.js';
import { requireString } from './options.js';

export interface RestoreCliOptions {
  imagesDir: string;
  detach: boolean;
  shellJob: boolean;
}

export default defineCommand<RestoreCliOptions, RestoreResult>({
  name: 'restore',
  summary: 'restore a process from an image directory, with its original PID',
  help: [
    '',
    'Without -d, criu-ts stays the parent of the restored process and exits with its exit',
    'status (128 + signal if it was killed), as CRIU does. Any failure before the process',
    'runs kills what was created: nothing half-alive remains.',
  ].join('\n'),
  configure(cmd: Command) {
    cmd
      .requiredOption('-D, --images-dir <dir>', 'the image set to restore')
      .option('-d, --restore-detached', 'return once the process runs on its own')
      .option('--shell-job', 'give the process this command\'s std fds where it had its shell\'s');
  },
  parse: (raw) => ({
    imagesDir: requireString(raw.imagesDir, '-D/--images-dir'),
    detach: raw.restoreDetached === true,
    shellJob: raw.shellJob === true,
  }),
  async run(o, ctx) {
    const { restore } = await import('../restore/restore.js');
    const log = commandLogger(ctx, o.imagesDir, 'restore.log');
    try {
      return await restore(o, log, ctx.env[FAULT_ENV]);
    } finally {
      if (log !== ctx.log) log.close();
    }
  },
  render: (r) => (r.exitCode === undefined ? [`Restored pid ${r.pid} in ${r.stats.totalMs!.toFixed(1)} ms.`] : []),
  json: (r) => r,
  exitCode: (r) => r.exitCode ?? 0,
});
