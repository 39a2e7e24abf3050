// `criu-ts lazy-pages -D DIR`: serve a lazy restore's pages from a separate process.
import type { Command } from 'commander';
import type { LazyStats } from '../lazy/server.js';
import { defineCommand } from './command.js';
import { commandLogger } from './images-log.js';
import { requireString } from './options.js';

export default defineCommand<{ imagesDir: string }, LazyStats & { pid: number }>({
  name: 'lazy-pages',
  summary: 'serve the memory of a `restore --lazy-pages` from this process (CRIU-style two-step)',
  help: [
    '',
    'Start this first, then `criu-ts restore -D DIR --lazy-pages`: the restore hands this',
    'server the process\'s userfaultfd through DIR/lazy-pages.sock and lets the process run;',
    'this server fills its memory on demand and in the background, then exits.',
  ].join('\n'),
  configure(cmd: Command) {
    cmd.requiredOption('-D, --images-dir <dir>', 'the image set being restored');
  },
  parse: (raw) => ({ imagesDir: requireString(raw.imagesDir, '-D/--images-dir') }),
  async run(o, ctx) {
    const { lazyPages } = await import('../lazy/lazy-pages.js');
    const log = commandLogger(ctx, o.imagesDir, 'lazy-pages.log');
    try {
      return await lazyPages(o.imagesDir, log);
    } finally {
      if (log !== ctx.log) log.close();
    }
  },
  render: (s) => [
    `Lazy pages of pid ${s.pid}: ${s.ended === 'complete' ? 'all in' : 'the process exited first'} after ${s.completeMs.toFixed(0)} ms; ${s.faults} faults, ${(
      s.pushedBytes / 1048576
    ).toFixed(1)} MiB pushed.`,
  ],
  json: (s) => s,
});
