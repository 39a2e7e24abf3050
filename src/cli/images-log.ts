// CRIU writes dump.log / restore.log into the images directory at -v2 and above unless
// -o names another file; so do we.
import { join } from 'node:path';
import { createLogger, type Logger } from '../log.js';
import type { CliContext } from './command.js';

export function commandLogger(ctx: CliContext, dir: string, name: string): Logger {
  if (ctx.globals.logFile || ctx.globals.verbosity < 2) return ctx.log;
  return createLogger({
    verbosity: ctx.globals.verbosity,
    file: join(dir, name),
    stderr: (l) => ctx.io.stderr(l + '\n'),
    name: 'criu-ts',
  });
}
