// The readable tables printed after a run.
import type { BenchResult, Load } from './run.js';

const MiB = 1 << 20;

export function table(title: string, head: string[], rows: string[][], notes: string[] = []): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [title, line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line), ...notes.map((n) => `  ${n}`), ''].join('\n');
}

export const fmtSize = (b: number) => (b >= 1 << 30 && b % (1 << 30) === 0 ? `${b / (1 << 30)} GiB` : `${(b / MiB).toFixed(b % MiB ? 1 : 0)} MiB`);
const g = (x: number) => x.toFixed(2);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
const others = (l: Load | undefined) => (l ? `${l.otherCores.toFixed(2)}${l.attempts > 1 ? ` (run ${l.attempts})` : ''}` : '-');
const span = (r: [number, number] | undefined) => (r ? `${g(r[0])}-${g(r[1])}` : '-');

export function renderTables(r: BenchResult): string {
  const out: string[] = [];
  const m = r.machine;
  const o = r.options;
  const reps = o.reps > 1;
  out.push(
    `criu-ts bench: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}; images in ${o.imagesBase} (${m.imagesFs})`,
    `GB/s = 1e9 bytes/s of page data; zstd level ${o.level}, ${r.cases.find((c) => c.limits)?.limits?.compressPool.threads ?? '?'} compression workers.` +
      (reps ? ` Median of ${o.reps} repetitions per size.` : '') +
      (o.nice ? ` The bench ran at nice ${o.nice}.` : ''),
    `"others": cores' worth of CPU used by other processes and kernel threads during the phase (writeback included);` +
      ` a phase is run again (up to ${o.retries} times) when others > ${o.maxOthers}.`,
    '',
  );
  const withLimits = r.cases.filter((c) => c.limits);
  if (withLimits.length) {
    out.push(
      table(
        'Raw limits (measured on each victim, just before each dump)',
        ['size', 'readv 1M', 'readv async 4M', 'zstd 1 core', 'zstd pool', 'ratio', 'disk write', 'disk x ratio', 'slowest', 'others'],
        withLimits.map((c) => {
          const l = c.limits!;
          return [
            fmtSize(c.bytes),
            g(l.readv.gbps),
            g(l.readvAsync4M.gbps),
            g(l.compress1.gbps),
            g(l.compressPool.gbps),
            l.ratio.toFixed(2),
            g(l.disk.gbps),
            g(l.diskPages.gbps),
            `${l.slowest.name} ${g(l.slowest.gbps)}`,
            others(c.load.limits),
          ];
        }),
        [
          'readv: process_vm_readv from the victim; zstd: its pages in 64 KiB frames (+ CRC), one core / the worker pool;',
          'disk write: GB/s written (write + fsync of the image size); disk x ratio: the page data that rate carries.',
        ],
      ),
    );
  }
  const withDump = r.cases.filter((c) => c.dump);
  if (withDump.length) {
    out.push(
      table(
        'Dump',
        ['size', 'wall ms', 'pages ms', 'frozen ms', 'GB/s', ...(reps ? ['GB/s range'] : []), 'GB/s pages', 'image MiB', 'ratio', 'of slowest', 'pages of slowest', 'others'],
        withDump.map((c) => {
          const d = c.dump!;
          return [
            fmtSize(c.bytes),
            ms(d.wallMs),
            ms(d.pagesMs),
            ms(d.frozenMs),
            g(d.wall.gbps),
            ...(reps ? [span(c.spread?.dump)] : []),
            g(d.pages.gbps),
            (d.imageBytes / MiB).toFixed(1),
            d.ratio.toFixed(2),
            c.ofSlowest ? pct(c.ofSlowest.wall) : '-',
            c.ofSlowest ? pct(c.ofSlowest.pages) : '-',
            others(c.load.dump),
          ];
        }),
        [
          'GB/s: page data / wall time of the whole dump; GB/s pages: / the pages stage (scan, read, compress, write, fsync).',
          'of slowest: dump GB/s / the slowest raw limit measured just before it (median over repetitions). Goal: >= 70 %.',
        ],
      ),
    );
  }
  const withRestore = r.cases.filter((c) => c.restore);
  if (withRestore.length) {
    out.push(
      table(
        'Restore (detached: from start until the process runs)',
        ['size', 'total ms', 'pages ms', 'GB/s', ...(reps ? ['GB/s range'] : []), 'GB/s pages', 'written MiB', 'RSS MiB', 'others'],
        withRestore.map((c) => {
          const s = c.restore!;
          return [
            fmtSize(c.bytes),
            ms(s.wallMs),
            ms(s.pagesMs),
            g(s.wall.gbps),
            ...(reps ? [span(c.spread?.restore)] : []),
            g(s.pages.gbps),
            (s.pagesBytes / MiB).toFixed(0),
            (s.rssBytes / MiB).toFixed(0),
            others(c.load.restore),
          ];
        }),
        ['GB/s: memory written / total restore time; GB/s pages: / the page-filling stage.'],
      ),
    );
  }
  for (const c of r.cases) if (c.error) out.push(`${fmtSize(c.bytes)}: FAILED: ${c.error.split('\n')[0]}`);
  out.push(`total ${(r.durationMs / 1000).toFixed(1)} s`);
  return out.join('\n');
}
