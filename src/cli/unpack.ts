// `criu-ts unpack [-i FILE] -D DIR`: an archive from pack, verified, into a new directory.
import type { Command } from 'commander';
import type { UnpackResult } from '../pack/unpack.js';
import { defineCommand } from './command.js';
import { UsageError } from './errors.js';
import { cancellable } from './interrupt.js';
import { requireString } from './options.js';
import { progressLine } from './progress.js';

export interface UnpackCliOptions {
  imagesDir: string;
  /** A file; absent for stdin. */
  input?: string;
}

export default defineCommand<UnpackCliOptions, UnpackResult>({
  name: 'unpack',
  summary: 'unpack an archive made by pack (a file, or stdin) into a new image directory',
  help: [
    '',
    'DIR becomes the set that was packed, its parents in DIR/parents/1, DIR/parents/2 ...:',
    'restore it with `criu-ts restore -D DIR`. DIR must not exist (or be empty); the archive',
    'is written beside it and renamed into place only once every file matched the manifest',
    '(size and sha256) and the chain loads, so DIR is complete or absent. Refused: names that',
    'leave DIR (.., absolute), links, devices, duplicates, anything not in the manifest.',
  ].join('\n'),
  configure(cmd: Command) {
    cmd
      .requiredOption('-D, --images-dir <dir>', 'the directory to create (0700; files 0600)')
      .option('-i, --input <file>', 'read the archive from this file (default: stdin)');
  },
  parse: (raw) => ({
    imagesDir: requireString(raw.imagesDir, '-D/--images-dir'),
    ...(raw.input !== undefined && raw.input !== '-' ? { input: requireString(raw.input, '-i/--input') } : {}),
  }),
  async run(o, ctx) {
    let input: string | NodeJS.ReadableStream;
    if (o.input !== undefined) input = o.input;
    else {
      const stdin = ctx.io.binary?.stdin;
      if (!stdin) throw new UsageError('no stdin to read the archive from: give -i FILE');
      if (stdin.isTTY) throw new UsageError('no archive on stdin (it is a terminal): give -i FILE, or pipe one in');
      input = stdin;
    }
    const { unpack } = await import('../api/pack.js');
    const progress = progressLine(ctx.io);
    try {
      return await cancellable((signal) => unpack({ input, imagesDir: o.imagesDir, signal, onProgress: progress.onProgress, log: ctx.log }));
    } finally {
      progress.end();
    }
  },
  render: (r) => [
    `Unpacked ${r.sets.length} set${r.sets.length === 1 ? '' : 's'} of pid ${r.rootPid} into ${r.imagesDir}: ${r.files} files, ` +
      `${(r.bytes / 1048576).toFixed(1)} MiB, all matching the manifest. Restore with: criu-ts restore -D ${r.imagesDir}`,
  ],
  json: (r) => r,
});
