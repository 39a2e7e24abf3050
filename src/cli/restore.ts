// `criu-ts restore -D DIR [-d] [--shell-job]`
import type { Command } from 'commander';
import type { RestoreResult } from '../restore/restore.js';
import { defineCommand } from './command.js';
import { FAULT_ENV } from './dump.js';
import { commandLogger } from './images-log.js';
import { requireString } from './options.js';
import { DAEMON_ENV, report, startDaemon } from './lazy-daemon.js';
import { createLogger } from '../log.js';
import { join } from 'node:path';
import type { CliContext } from './command.js';

type RestoreFn = (typeof import('../restore/restore.js'))['restore'];

/**
 * The detached lazy daemon: restores, reports on fd `fd` once the process runs, then serves
 * its pages with stderr quiet (it is still the user's terminal); the log file has the rest.
 */
async function runDaemon(o: RestoreCliOptions, ctx: CliContext, fd: number, restore: RestoreFn): Promise<RestoreResult> {
  let quiet = false;
  const log = createLogger({
    verbosity: ctx.globals.verbosity,
    file: ctx.globals.logFile ?? join(o.imagesDir, 'restore.log'),
    fileVerbosity: Math.max(ctx.globals.verbosity, 2) as 2,
    stderr: (l) => {
      if (!quiet) ctx.io.stderr(l + '\n');
    },
    name: 'criu-ts',
  });
  try {
    const r = await restore(
      {
        ...o,
        onResumed: (pid, stats) => {
          report(fd, `ok ${JSON.stringify({ pid, stats })}`);
          quiet = true;
        },
      },
      log,
      ctx.env[FAULT_ENV],
    );
    // Its command has returned long ago: nothing more for the terminal.
    return { ...r, daemonDone: true };
  } catch (e) {
    report(fd, `err ${(e as Error).message}`);
    throw e;
  } finally {
    log.close();
  }
}

export interface RestoreCliOptions {
  imagesDir: string;
  detach: boolean;
  shellJob: boolean;
  lazy: boolean;
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
      .option('--shell-job', 'give the process this command\'s std fds where it had its shell\'s')
      .option('--lazy', 'resume at once; private memory arrives on demand (userfaultfd) and in the background');
  },
  parse: (raw) => ({
    imagesDir: requireString(raw.imagesDir, '-D/--images-dir'),
    detach: raw.restoreDetached === true,
    shellJob: raw.shellJob === true,
    lazy: raw.lazy === true,
  }),
  async run(o, ctx) {
    const daemonFd = ctx.env[DAEMON_ENV];
    if (o.lazy && o.detach && daemonFd === undefined) {
      const r = await startDaemon(process.argv.slice(1), ctx.env);
      return { pid: r.pid, stats: r.stats, serverPid: r.serverPid };
    }
    const { restore } = await import('../restore/restore.js');
    if (daemonFd !== undefined) return runDaemon(o, ctx, Number(daemonFd), restore);
    const log = commandLogger(ctx, o.imagesDir, 'restore.log');
    try {
      return await restore(o, log, ctx.env[FAULT_ENV]);
    } finally {
      if (log !== ctx.log) log.close();
    }
  },
  render: (r) => (r.exitCode === undefined && !r.daemonDone ? [`Restored pid ${r.pid} in ${r.stats.totalMs!.toFixed(1)} ms${r.serverPid ? `; lazy pages served by pid ${r.serverPid}` : ''}.`] : []),
  json: (r) => r,
  exitCode: (r) => r.exitCode ?? 0,
});
