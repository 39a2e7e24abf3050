// `criu-ts show -D DIR | --archive FILE [--json]`: what an image set holds, readable by a person.
import type { Command } from 'commander';
import type { ImagesFrom } from '../api/images-from.js';
import type { SetSummary } from '../images/describe.js';
import { defineCommand } from './command.js';
import { UsageError } from './errors.js';
import { requireString } from './options.js';

const mib = (n: number) => `${(n / 1048576).toFixed(n < 1048576 ? 2 : 1)} MiB`;

export default defineCommand<ImagesFrom, SetSummary>({
  name: 'show',
  summary: 'describe an image set: processes, VMAs, fds, pages, parent chain',
  help: ['', 'With --archive, the archive (made by pack) is read in place, without unpacking it.'].join('\n'),
  configure(cmd: Command) {
    cmd.option('-D, --images-dir <dir>', 'the image set').option('--archive <file>', 'an archive made by pack, read in place');
  },
  parse: imagesFrom,
  async run(o) {
    const { show } = await import('../api/show.js');
    return show(o);
  },
  render: renderSummary,
  json: (s) => s,
});

/** -D DIR or --archive FILE, exactly one (show and restore). */
export function imagesFrom(raw: Record<string, unknown>): ImagesFrom {
  if ((raw.imagesDir === undefined) === (raw.archive === undefined)) throw new UsageError('give the images with -D/--images-dir DIR or --archive FILE (one of them)');
  return raw.archive !== undefined ? { archive: requireString(raw.archive, '--archive') } : { imagesDir: requireString(raw.imagesDir, '-D/--images-dir') };
}

export function renderSummary(s: SetSummary): string[] {
  const out = [
    `${s.dir}: ${s.kind} (format v${s.version}) of pid ${s.rootPid}, made ${s.createdAt} by criu-ts ${s.toolVersion} on Linux ${s.kernel}`,
    s.parent === null ? 'parent: none' : `parent: ${s.parent} (chain: ${s.chain.map((c) => `${c.dir} [${c.kind}]`).join(' <- ')})`,
  ];
  for (const p of s.processes) {
    const u = p.pages.uncompressedFrames;
    const ratio = (p.pages.ratio ? ` (ratio ${p.pages.ratio.toFixed(2)})` : '') + (u ? `, ${u === p.pages.frames ? 'all' : u} uncompressed` : '');
    out.push(
      '',
      `process ${p.pid} "${p.comm}": parent ${p.ppid}, group ${p.pgid}, session ${p.sid}, threads ${p.threads.join(' ')}`,
      `  pages: ${mib(p.pages.rawBytes)} in this set, stored as ${mib(p.pages.storedBytes)} in ${p.pages.frames} frames${ratio}`,
      `  VMAs (${p.vmas.length}):`,
    );
    for (const v of p.vmas) {
      const pages = [v.pagesHere && `${v.pagesHere} pages here`, v.pagesInParent && `${v.pagesInParent} in parent`, v.pagesZero && `${v.pagesZero} zero`]
        .filter(Boolean)
        .join(', ');
      out.push(`    ${v.start}-${v.end} ${v.prot} ${mib(v.sizeBytes).padStart(11)} ${v.kind.padEnd(12)} ${v.name}${pages ? `  [${pages}]` : ''}`);
    }
    out.push(`  fds (${p.fds.length}):`);
    for (const f of p.fds) out.push(`    ${String(f.fd).padStart(4)} ${f.kind.padEnd(10)} ${f.flags} ${f.target}${f.pos ? ` @${f.pos}` : ''}${f.detail ? `: ${f.detail}` : ''}`);
    if (p.timers.length) out.push(`  timers (${p.timers.length}):`, ...p.timers.map((t) => `    ${t}`));
  }
  if (s.notes.length) out.push('', 'notes:', ...s.notes.map((n) => `  ${n}`));
  if (s.foreignFiles.length) out.push('', `files that are not part of an image set: ${s.foreignFiles.join(', ')}`);
  return out;
}
