// The readable tables of the lazy-restore bench.
import type { LazyBenchResult } from './lazy.js';
import { fmtSize, table } from './report.js';
import { median } from './script.js';

const MiB = 1 << 20;
const g = (x: number) => x.toFixed(2);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const us = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
export function renderLazyTables(r: LazyBenchResult): string {
  const m = r.machine;
  const o = r.options;
  const out = [
    `criu-ts lazy-restore bench: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}; zstd level ${o.level}` +
      (o.reps > 1 ? `; median of ${o.reps} repetitions per size and mode` : '') +
      (o.nice ? `; the bench ran at nice ${o.nice}` : ''),
    '',
  ];
  const ok = r.cases.filter((c) => c.summary.eager && c.summary.lazy && c.summary['lazy-idle']);
  out.push(
    table(
      'Lazy vs eager restore: time to resume, and until all memory is in',
      ['size', 'eager resume ms', 'lazy resume ms', 'eager all in ms', 'lazy all in ms', 'lazy/eager', 'idle: all in ms', 'lazy/eager', 'bg fill GB/s', 'of limit', 'others'],
      ok.map((c) => {
        const e = c.summary.eager!;
        const l = c.summary.lazy!;
        const i = c.summary['lazy-idle']!;
        // Both lazy modes resume the same way: the median over all their runs.
        const resume = median(c.runs.filter((x) => x.mode !== 'eager').map((x) => x.resumeMs));
        const limit = c.limits?.decompressCopy.gbps;
        return [
          fmtSize(c.bytes),
          ms(e.resumeMs),
          ms(resume),
          ms(e.allInMs),
          ms(l.allInMs),
          `${(l.allInMs / e.allInMs).toFixed(2)}x`,
          ms(i.allInMs),
          `${(i.allInMs / e.allInMs).toFixed(2)}x`,
          g(i.lazy!.fillGBps),
          limit ? pct(i.lazy!.fillGBps / limit) : '-',
          [e, l, i].map((x) => x.otherCores.toFixed(2)).join('/'),
        ];
      }),
      [
        'resume: restore start to the process running (stats.totalMs). Eager writes all memory first; lazy resumes with none of it in.',
        'all in: restore start until the last page is in. lazy: the process reads scattered pages from the moment it runs;',
        '  idle: it touches nothing meanwhile, so the background push alone fills it. bg fill GB/s: of that idle run,',
        '  pages pushed / the time the server ran (lazyPushedBytes / lazyCompleteMs); of limit: of the raw decompress + UFFDIO_COPY',
        '  rate below. others: cores used by other work during each (eager/lazy/idle).',
      ],
    ),
  );
  out.push(
    table(
      `First touches as the process times them (${o.touches} scattered pages, one word each, from the moment it runs)`,
      ['size', 'mode', 'not in yet', 'p50 µs', 'p99 µs', 'max µs', 'all p50 µs', 'all p99 µs', 'server faults', 'p50 µs', 'p99 µs', 'fault MiB', 'pushed MiB', 'in GB/s', 'start ms', 'loop ms'],
      ok.flatMap((c) =>
        (['eager', 'lazy'] as const).map((mode) => {
          const s = c.summary[mode]!;
          const t = s.touches;
          const f = t.faulted > 0;
          const z = s.lazy;
          return [
            fmtSize(c.bytes),
            mode,
            `${t.faulted.toFixed(0)} of ${t.touches}`,
            f ? us(t.faultedP50Us) : '-',
            f ? us(t.faultedP99Us) : '-',
            f ? us(t.faultedMaxUs) : '-',
            us(t.allP50Us),
            us(t.allP99Us),
            z ? z.faults.toFixed(0) : '-',
            z ? us(z.serverP50Us) : '-',
            z ? us(z.serverP99Us) : '-',
            z ? (z.faultBytes / MiB).toFixed(0) : '-',
            z ? (z.pushedBytes / MiB).toFixed(0) : '-',
            z ? g(z.inGBps) : '-',
            ms(t.startMs),
            ms(t.loopMs),
          ];
        }),
      ),
      [
        'not in yet: touches whose page was missing just before (mincore), i.e. lazy faults. p50/p99/max: their time (the read',
        '  of one word) as clock_gettime in the process measures it. all: every first touch (a page already in: ~0.3 µs).',
        'server: the lazy server\'s count and own service time of faults (uffd read to wake; the stack\'s and others included);',
        '  fault/pushed MiB: what it put in on faults / in the background; in GB/s: both / the time it ran.',
        'start: from the restorer seeing the process run (SIGUSR1 sent) to its first touch; loop: all the touches.',
      ],
    ),
  );
  const withLimits = r.cases.filter((c) => c.limits);
  if (withLimits.length) {
    out.push(
      table(
        'Raw limits of page filling (same run, one thread)',
        ['size', 'UFFDIO_COPY 64K GB/s', 'UFFDIO_COPY 4M', 'decompress', 'decompress + copy', 'sample MiB', 'others'],
        withLimits.map((c) => {
          const l = c.limits!;
          return [fmtSize(c.bytes), g(l.copy64K.gbps), g(l.copy4M.gbps), g(l.decompress.gbps), g(l.decompressCopy.gbps), (l.sampleBytes / MiB).toFixed(0), c.limitsLoad?.otherCores.toFixed(2) ?? '-'];
        }),
        [
          'UFFDIO_COPY into fresh memory of a stopped stub, 64 KiB (the server\'s op size) or 4 MiB per ioctl;',
          'decompress: the victim\'s image frames (pread + CRC + zstd); decompress + copy: both in turn, as the server does.',
        ],
      ),
    );
  }
  for (const c of r.cases) if (c.error) out.push(`${fmtSize(c.bytes)}: FAILED: ${c.error.split('\n')[0]}`);
  out.push(`total ${(r.durationMs / 1000).toFixed(1)} s`);
  return out.join('\n');
}
