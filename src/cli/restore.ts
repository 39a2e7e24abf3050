// `criu-ts restore -D DIR | --archive FILE [-d] [--shell-job] [--lazy]`
import type { Command } from 'commander';
import type { RestoreResult } from '../restore/restore.js';
import { defineCommand } from './command.js';
import { FAULT_ENV } from './dump.js';
import { commandLogger } from './images-log.js';
import { progressLine } from './progress.js';
import { UsageError } from './errors.js';
import { imagesFrom } from './show.js';
import { parseInheritFd, type InheritFd } from '../restore/fds/inherit.js';
import { DAEMON_ENV, report, startDaemon } from './lazy-daemon.js';
import { createLogger } from '../log.js';
import { join } from 'node:path';
import type { CliContext } from './command.js';

type RestoreFn = (typeof import('../api/restore.js'))['restore'];

/**
 * The detached lazy daemon: restores, reports on fd `fd` once the process runs, then serves
 * its pages with stderr quiet (it is still the user's terminal); the log file has the rest.
 */
async function runDaemon(o: RestoreCliOptions, ctx: CliContext, fd: number, restore: RestoreFn): Promise<RestoreResult> {
  let quiet = false;
  const log = createLogger({
    verbosity: ctx.globals.verbosity,
    file: ctx.globals.logFile ?? (o.imagesDir !== undefined ? join(o.imagesDir, 'restore.log') : undefined),
    fileVerbosity: Math.max(ctx.globals.verbosity, 2) as 2,
    stderr: (l) => {
      if (!quiet) ctx.io.stderr(l + '\n');
    },
    name: 'criu-ts',
  });
  try {
    const r = await restore({
      ...o,
      onResumed: (pid, stats) => {
        report(fd, `ok ${JSON.stringify({ pid, stats })}`);
        quiet = true;
      },
      log,
      fault: ctx.env[FAULT_ENV],
    });
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
  /** One of the two (see imagesFrom). */
  imagesDir?: string;
  archive?: string;
  detach: boolean;
  shellJob: boolean;
  lazy: boolean;
  lazyPages: boolean;
  /** --inherit-fd fd[N]:KEY, repeatable. */
  inheritFds: InheritFd[];
}

export default defineCommand<RestoreCliOptions, RestoreResult>({
  name: 'restore',
  summary: 'restore a process from an image directory, with its original PID',
  help: [
    '',
    'Without -d, criu-ts stays the parent of the restored process and exits with its exit',
    'status (128 + signal if it was killed), as CRIU does. Any failure before the process',
    'runs kills what was created: nothing half-alive remains.',
    '',
    'With --archive FILE (made by pack), the set and its parents are read in place, not',
    'unpacked: each file is checked against the manifest (size, sha256) as it is read, and',
    'page data frame by frame by its own checksums.',
  ].join('\n'),
  configure(cmd: Command) {
    cmd
      .option('-D, --images-dir <dir>', 'the image set to restore')
      .option('--archive <file>', 'restore from an archive made by pack, read in place (not unpacked)')
      .option('-d, --restore-detached', 'return once the process runs on its own')
      .option('--shell-job', 'give the process this command\'s std fds where it had its shell\'s')
      .option('--lazy', 'resume at once; private memory arrives on demand (userfaultfd) and in the background')
      .option('--lazy-pages', 'like --lazy, served by a `criu-ts lazy-pages -D DIR` started before')
      .option('--tcp-established', 'accepted as CRIU does; established connections in the image are restored with or without it')
      .option(
        '--inherit-fd <fd[N]:KEY>',
        'give the process this command\'s fd N where it had KEY (as `show` lists it, e.g. pipe:[1234]); repeatable',
        (v: string, acc: string[]) => [...acc, v],
        [] as string[],
      );
  },
  parse: (raw) => {
    if (raw.archive !== undefined && raw.lazyPages === true) throw new UsageError('--lazy-pages meets its server in an image directory: unpack the archive, or use --lazy');
    return {
      ...imagesFrom(raw),
      detach: raw.restoreDetached === true,
      shellJob: raw.shellJob === true,
      lazy: raw.lazy === true,
      lazyPages: raw.lazyPages === true,
      inheritFds: ((raw.inheritFd as string[] | undefined) ?? []).map((v) => {
        try {
          return parseInheritFd(v);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
      }),
    };
  },
  async run(o, ctx) {
    const daemonFd = ctx.env[DAEMON_ENV];
    if (o.lazy && o.detach && daemonFd === undefined) {
      const r = await startDaemon(process.argv.slice(1), ctx.env);
      return { pid: r.pid, stats: r.stats, serverPid: r.serverPid };
    }
    const { restore } = await import('../api/restore.js');
    if (daemonFd !== undefined) return runDaemon(o, ctx, Number(daemonFd), restore);
    const log = o.imagesDir !== undefined ? commandLogger(ctx, o.imagesDir, 'restore.log') : ctx.log;
    const progress = progressLine(ctx.io);
    try {
      // The line goes once the process runs: from then on the terminal is its.
      return await restore({ ...o, log, fault: ctx.env[FAULT_ENV], onProgress: progress.onProgress, onResumed: () => progress.end() });
    } finally {
      progress.end();
      if (log !== ctx.log) log.close();
    }
  },
  render: (r) => (r.exitCode === undefined && !r.daemonDone ? [`Restored pid ${r.pid} in ${r.stats.totalMs!.toFixed(1)} ms${r.serverPid ? `; lazy pages served by pid ${r.serverPid}` : ''}.`] : []),
  json: (r) => r,
  exitCode: (r) => r.exitCode ?? 0,
});
