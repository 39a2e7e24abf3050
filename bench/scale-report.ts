// The readable tables of the threads-and-trees bench.
import { fmtSize, table } from './report.js';
import type { ScaleBenchResult, ScaleCase } from './scale.js';

const MiB = 1 << 20;
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const per = (x: number, base: number | undefined, n: number) => (base === undefined || n <= 1 ? '-' : `${(x - base) / (n - 1) >= 0 ? '+' : ''}${((x - base) / (n - 1)).toFixed(2)}`);

function rows(cases: ScaleCase[], count: (c: ScaleCase) => number, base: ScaleCase | undefined): string[][] {
  const dumpOther = (c: ScaleCase | undefined) => (c?.dump ? c.dump.totalMs - c.dump.pagesMs : undefined);
  const restoreOther = (c: ScaleCase | undefined) => (c?.restore?.pagesMs !== undefined ? c.restore.totalMs - c.restore.pagesMs : undefined);
  return cases
    .filter((c) => c.dump && c.restore)
    .map((c) => {
      const d = c.dump!;
      const r = c.restore!;
      const n = count(c);
      const ro = restoreOther(c);
      return [
        String(n),
        ms(d.wallMs),
        per(d.wallMs, base?.dump?.wallMs, n),
        ms(d.frozenMs),
        per(d.frozenMs, base?.dump?.frozenMs, n),
        ms(dumpOther(c)!),
        per(dumpOther(c)!, dumpOther(base), n),
        ms(r.totalMs),
        per(r.totalMs, base?.restore?.totalMs, n),
        ro === undefined ? '-' : ms(ro),
        ro === undefined ? '-' : per(ro, restoreOther(base), n),
        (d.imageBytes / MiB).toFixed(1),
        `${d.otherCores.toFixed(2)}/${r.otherCores.toFixed(2)}`,
      ];
    });
}

export function renderScaleTables(r: ScaleBenchResult): string {
  const m = r.machine;
  const o = r.options;
  const out = [
    `criu-ts threads-and-trees bench: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}; ` +
      `${fmtSize(o.bytes)} of memory in every victim, zstd level ${o.level}` +
      (o.reps > 1 ? `; median of ${o.reps} repetitions` : '') +
      (o.nice ? `; the bench ran at nice ${o.nice}` : ''),
    '',
  ];
  const base = r.cases.find((c) => c.threads === 1 && c.procs === 1);
  const head = (what: string, one: string) => {
    const plus = `+ms/${one}`;
    return [what, 'dump ms', plus, 'frozen ms', plus, 'dump w/o pages', plus, 'restore ms', plus, 'restore w/o pages', plus, 'image MiB', 'others'];
  };
  const threads = r.cases.filter((c) => c.procs === 1).sort((a, b) => a.threads - b.threads);
  const trees = r.cases.filter((c) => c.threads === 1).sort((a, b) => a.procs - b.procs);
  const notes = [
    'dump: the whole dump() call (--leave-running); frozen: how long the processes were stopped; restore: start until all run.',
    'w/o pages: the same less the page stage (reading, compressing and writing memory / filling it): what is left grows with',
    '  threads and processes. (Restore times its stages per process: w/o pages only for one process.)',
    '+ms/...: (time - the 1-thread, 1-process time) / (count - 1): what each thread or process beyond the first adds.',
    'others: cores used by other work during the dump/restore.',
  ];
  out.push(table(`Threads: one process with N threads (all asleep in pause()), ${fmtSize(o.bytes)} of memory`, head('threads', 'thread'), rows(threads, (c) => c.threads, base), notes));
  out.push(
    table(
      `Trees: N one-thread processes (a binary tree: 16 are 5 levels deep), ${fmtSize(o.bytes)} split evenly between them`,
      head('processes', 'process'),
      rows(trees, (c) => c.procs, base),
      ['(Same columns as above.)'],
    ),
  );
  for (const c of r.cases) if (c.error) out.push(`${c.threads} threads x ${c.procs} processes: FAILED: ${c.error.split('\n')[0]}`);
  out.push(`total ${(r.durationMs / 1000).toFixed(1)} s`);
  return out.join('\n');
}
