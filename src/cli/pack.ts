// `criu-ts pack -D DIR [-o FILE]`: the set and its parent chain as one tar stream.
import type { Command } from 'commander';
import type { PackResult } from '../pack/pack.js';
import { defineCommand } from './command.js';
import { UsageError } from './errors.js';
import { cancellable } from './interrupt.js';
import { requireString } from './options.js';
import { progressLine } from './progress.js';

export interface PackCliOptions {
  imagesDir: string;
  /** A file, or '-' / absent for stdout. */
  output?: string;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export default defineCommand<PackCliOptions, PackResult>({
  name: 'pack',
  summary: 'put an image set and its whole parent chain into one tar archive (a file, or stdout)',
  help: [
    '',
    'The archive holds MANIFEST.json first (every file with its size and sha256), then each',
    'set of the chain in its folder: the packed set at the top, its parents in parents/1/,',
    'parents/2/ ... Page data stays in its zstd frames. Without -o, or with -o -, the archive',
    'goes to stdout, which must not be a terminal:',
    '',
    '  criu-ts pack -D img/3 | ssh host criu-ts unpack -D /var/lib/ckpt/x',
    '',
    'After the command name, -o is the archive; name a log file with --log-file (or -o before',
    'the command name).',
  ].join('\n'),
  shadows: { '-o': '--output' },
  configure(cmd: Command) {
    cmd
      .requiredOption('-D, --images-dir <dir>', 'the image set to pack (its parents come along)')
      .option('-o, --output <file>', 'write the archive to this file (0600, replaced only when complete); - for stdout');
  },
  parse(raw) {
    const output = raw.output === undefined ? undefined : requireString(raw.output, '-o/--output');
    if (raw.json === true && (output === undefined || output === '-')) throw new UsageError('--json needs -o FILE: stdout carries the archive');
    return { imagesDir: requireString(raw.imagesDir, '-D/--images-dir'), ...(output !== undefined ? { output } : {}) };
  },
  async run(o, ctx) {
    let output: string | NodeJS.WritableStream;
    if (o.output !== undefined && o.output !== '-') output = o.output;
    else {
      const out = ctx.io.binary?.stdout;
      if (!out) throw new UsageError('no stdout to write the archive to: give -o FILE');
      if (out.isTTY) throw new UsageError('refusing to write an archive to a terminal: give -o FILE, or pipe it (criu-ts pack -D DIR | ...)');
      output = out;
    }
    const { pack } = await import('../api/pack.js');
    const progress = progressLine(ctx.io);
    try {
      return await cancellable((signal) => pack({ imagesDir: o.imagesDir, output, signal, onProgress: progress.onProgress, log: ctx.log }));
    } finally {
      progress.end();
    }
  },
  render: (r) => [
    `Packed ${r.sets.length} set${r.sets.length === 1 ? '' : 's'} of pid ${r.rootPid} into ${r.output === '-' ? 'stdout' : r.output}: ` +
      `${r.files} files, ${mib(r.bytes)} (archive ${mib(r.archiveBytes)}).`,
    ...r.skipped.map((s) => `note: not packed (not an image file): ${s}`),
  ],
  json: (r) => r,
});
