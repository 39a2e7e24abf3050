// The readable tables of the pre-dump bench.
import type { PredumpBenchResult } from './predump.js';

function table(title: string, head: string[], rows: string[][], notes: string[] = []): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [title, line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line), ...notes.map((n) => `  ${n}`), ''].join('\n');
}

const size = (b: number) => (b % (1 << 30) === 0 ? `${b / (1 << 30)} GiB` : `${b / (1 << 20)} MiB`);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const mstores = (x: number) => (x / 1e6).toFixed(1);

type Case = PredumpBenchResult['cases'][number];

/**
 * The runs of each size, rate and ending (with --repeat), in the order first run: the one
 * with the median final freeze stands for the group (its figures are one run's, consistent
 * with each other), with the range of the final freeze over all of them.
 */
function groups(cases: Case[]): Array<{ median: Case; frozen: number[] }> {
  const byKey = new Map<string, Case[]>();
  for (const c of cases) {
    const k = `${c.bytes}/${c.pct}/${c.kill ? 'k' : 'l'}`;
    byKey.set(k, [...(byKey.get(k) ?? []), c]);
  }
  return [...byKey.values()].map((runs) => {
    const sorted = [...runs].sort((a, b) => a.result!.final.frozenMs - b.result!.final.frozenMs);
    return { median: sorted[(sorted.length - 1) >> 1]!, frozen: sorted.map((c) => c.result!.final.frozenMs) };
  });
}

export function renderPredumpTables(r: PredumpBenchResult): string {
  const m = r.machine;
  const out = [
    `criu-ts pre-dump bench: ${m.cpus} x ${m.cpuModel}, Linux ${m.kernel}, Node ${m.node}; ${r.options.passes} passes ${r.options.intervalMs} ms apart, zstd level ${r.options.level}` +
      `, final dump ${r.options.finalLevel === undefined ? 'at the default (stored)' : `at level ${r.options.finalLevel}`}${r.options.catchUp === false ? ', no catch-up pass' : ''}`,
    ...(r.kernelCosts
      ? [
          `kernel entry on this machine: a syscall ${r.kernelCosts.syscallNs} ns, a page fault on fresh memory ${r.kernelCosts.faultUs} µs (hypervisor: ${r.kernelCosts.hypervisor});` +
            ' a frozen dump is mostly such entries',
        ]
      : []),
    '',
  ];
  const ok = r.cases.filter((c) => c.result);
  const repeated = (r.options.repeat ?? 1) > 1;
  out.push(
    table(
      `Pre-dump passes (the victim writes PCT % of its pages per second; passes run while it does)${repeated ? '; the first run of each chain' : ''}`,
      ['size', 'write %/s', 'pass', 'frozen ms', 'wall ms', 'written', 'saved', 'saved MiB'],
      ok.filter((c) => (c.run ?? 1) === 1).flatMap((c) =>
        c.result!.passes.map((p) => [
          size(c.bytes),
          String(c.pct),
          String(p.pass),
          ms(p.frozenMs),
          ms(p.wallMs),
          p.pass === 1 ? '-' : String(p.pagesWritten),
          String(p.pagesSaved),
          ((p.pagesSaved * 4096) / 1048576).toFixed(1),
        ]),
      ),
      ['frozen: the time the process was stopped in the pass (pass 1: the uffd injection only; later passes: never).', 'written/saved: 4 KiB pages.'],
    ),
  );
  out.push(
    table(
      'Final dump (--prev-images-dir the last pass) and the cost of tracking to the process',
      ['size', 'write %/s', 'final', 'final frozen ms', ...(repeated ? ['runs: min-max'] : []), 'catch-up: passes, pages', 'final dirty %', 'final saved', 'pass-1 copy ms', 'Mstores/cpu-s untracked', 'tracked', 'slowdown', 'Mstores/s untracked', 'tracked', 'faults/s untracked', 'tracked'],
      groups(ok).map(({ median: c, frozen }) => {
        const x = c.result!;
        const p1 = x.passes[0]!;
        return [
          size(c.bytes),
          String(c.pct),
          x.final.killed ? 'killed' : 'left running',
          ms(x.final.frozenMs),
          ...(repeated ? [`${frozen.length}: ${ms(frozen[0]!)}-${ms(frozen[frozen.length - 1]!)}`] : []),
          x.final.stats.catchUpPasses ? `${x.final.stats.catchUpPasses}, ${x.final.stats.catchUpPages ?? 0}` : '-',
          ((x.final.pagesWritten * 4096 * 100) / c.bytes).toFixed(2),
          String(x.final.pagesSaved),
          ms(p1.planMs + p1.pagesMs),
          mstores(x.storesUntracked.perCpuSec),
          mstores(x.storesTracked.perCpuSec),
          `${(x.slowdown * 100).toFixed(1)} %`,
          mstores(x.storesUntracked.perSec),
          mstores(x.storesTracked.perSec),
          x.storesUntracked.faultsPerSec.toFixed(0),
          x.storesTracked.faultsPerSec.toFixed(0),
        ];
      }),
      [
        ...(repeated ? ['each row: the run with the median final freeze (of an even number, the lower middle one); runs: how many, and the range of their final freeze.'] : []),
        'final: killed, frozen until its set is on disk (written and synced: only then may the process go); left running',
        '  (--leave-running), let go once its state is copied (the pages in the page cache), before the set is written and synced.',
        "catch-up: the final dump's own passes while the process runs, right before its freeze (see src/dump/catch-up.ts), and the pages they saved.",
        'final dirty %: the pages written since the last pass (a catch-up, if any), of the whole size (what the final dump has to save).',
        'pass-1 copy ms: scan + copy of the whole memory in the first pass, i.e. about what a dump without pre-dump keeps the process frozen for memory.',
        'Mstores/cpu-s: the victim\'s own 8-byte stores per second of its CPU time (tracking faults included, other load on the machine not),',
        '  untracked before the chain and tracked between passes; slowdown from these. Mstores/s: the same per second of wall time.',
        'faults/s: the victim\'s minor faults per second: tracked, one per first store to a protected page (~1 us each).',
      ],
    ),
  );
  for (const c of r.cases.filter((x) => x.error)) out.push(`${size(c.bytes)} at ${c.pct} %/s failed: ${c.error!.split('\n')[0]}`);
  out.push(`total ${(r.durationMs / 1000).toFixed(1)} s`);
  return out.join('\n');
}
