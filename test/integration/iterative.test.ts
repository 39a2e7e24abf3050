// `criu-ts dump --iterative`: the pre-dump loop run by the tool itself, its stop rules, its
// progress and JSON, the chain it leaves (DIR/pre-N, parent of DIR), and its clean failure.
import { settle } from '../helpers/fixture-cases.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { IterativeResult } from '../../src/dump/iterative.js';
import { predictDirtyPages, stalled } from '../../src/dump/iterative.js';
import { fixture } from '../helpers/fixtures.js';
import { killAndReap, removeDir, runCli, tempDir } from '../helpers/cli.js';
import { catchUpDirs, ok, restoreAndVerify, show, vmasWithFlag } from '../helpers/chain.js';
import { startTarget, type Target } from '../helpers/target.js';

let target: Target | undefined;
let base: string | undefined;
const reap: number[] = [];
afterEach(async () => {
  await target?.stop();
  target = undefined;
  for (const p of reap.splice(0)) killAndReap(p);
  if (base) removeDir(base);
  base = undefined;
});

const iterative = (pid: number, dir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  runCli(['dump', '-t', String(pid), '-D', dir, '--iterative', '--shell-job', '--json', ...extra], env);

/** Trackers of the passes: reparented to this worker (a subreaper) once the CLI exits. */
function trackerOf(dir: string): number {
  return (JSON.parse(readFileSync(join(dir, 'inventory.json'), 'utf8')) as { tracking: Array<{ trackerPid: number }> }).tracking[0]!.trackerPid;
}

function gone(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

describe('dump --iterative', () => {
  it('a process storing all the time: runs --max-passes passes, each reported, and restores exactly', async () => {
    base = tempDir();
    target = await startTarget(fixture('fx_scribble'), ['64']);
    await target.waitFor('ready');
    const pid = target.pid;
    // A budget it can never meet (64 MiB are rewritten within ms): the pass limit must stop it.
    const r = ok(await iterative(pid, base, ['--max-passes', '3', '--max-downtime', '1']));
    const res = JSON.parse(r.stdout) as IterativeResult;
    reap.push(...new Set(res.passes.map((p) => trackerOf(join(base!, p.dir)))));
    expect(res.passes.map((p) => p.dir)).toEqual(['pre-1', 'pre-2', 'pre-3']);
    expect(res.stopReason).toBe('max-passes');
    expect(res.passes[0]!.pagesSaved).toBeGreaterThanOrEqual(64 * 256);
    expect(res.passes[0]!.estimatedDowntimeMs).toBeUndefined(); // the first pass measures no dirty set
    for (const p of res.passes.slice(1)) {
      expect(p.pagesWritten).toBeGreaterThan(1000);
      expect(p.dirtyPagesPerSec).toBeGreaterThan(0);
      expect(p.estimatedDowntimeMs).toBeGreaterThan(1);
      expect(p.stats.pagesInParent).toBeGreaterThan(0);
    }
    expect(res.final.stats.pagesInParent).toBeGreaterThan(0);
    // Progress: one line per pass on stderr, then the final dump.
    expect(r.stderr.match(/^pass \d+: \d+ pages written, \d+ saved .* dirty .* MiB\/s, copy .* GB\/s, /gm)).toHaveLength(3);
    expect(r.stderr).toMatch(/^final dump after 3 passes \(maximum number of passes\)$/m);
    // The final dump caught up first (64 MiB written since pre-3, over CATCH_UP_MIN_BYTES):
    // its set names that pass as its parent, and show does not call the passes foreign.
    // (one pass, or more if one found fewer pages written: see anotherCatchUp).
    expect(res.final.stats.catchUpPages).toBeGreaterThanOrEqual(4096);
    const ups = catchUpDirs(base, res.final.stats.catchUpPasses!);
    expect(ups.length).toBeGreaterThanOrEqual(1);
    const s = await show(base);
    expect(join(base, s.parent!)).toBe(ups[0]);
    expect(s.chain.map((c) => c.dir)).toEqual([...ups, ...['pre-3', 'pre-2', 'pre-1'].map((d) => join(base!, d))]);
    expect(s.foreignFiles).toEqual([]);
    await target.exited;
    await restoreAndVerify(base, pid, (p) => reap.push(p));
  });

  it('a quiet process: stops after two passes, its dirty set fits the budget', async () => {
    base = tempDir();
    target = await startTarget(fixture('fx_phases'));
    await target.waitFor('ready');
    const pid = target.pid;
    const r = ok(await iterative(pid, base));
    const res = JSON.parse(r.stdout) as IterativeResult;
    reap.push(...new Set(res.passes.map((p) => trackerOf(join(base!, p.dir)))));
    expect(res.stopReason).toBe('fits');
    expect(res.passes).toHaveLength(2);
    expect(res.passes[1]!.pagesWritten).toBeLessThan(16);
    expect(res.passes[1]!.estimatedDowntimeMs).toBeLessThanOrEqual(res.maxDowntimeMs);
    expect(res.maxDowntimeMs).toBe(100);
    expect(res.final.stats.pagesSaved).toBeLessThan(16);
    expect(r.stderr).toMatch(/^final dump after 2 passes \(the dirty set fits the 100 ms budget\)$/m);
    await target.exited;
    await restoreAndVerify(base, pid, (p) => reap.push(p));
  });

  it('a failed final dump leaves the process running, with no tracking left behind', async () => {
    base = tempDir();
    target = await startTarget(fixture('fx_phases'));
    await target.waitFor('ready');
    const pid = target.pid;
    const r = await iterative(pid, base, ['--max-passes', '2'], { CRIU_TS_FAULT: 'collect:fail' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/fault injected at collect/);
    expect(r.stderr).toMatch(/write tracking of the process was ended/);
    const trackers = ['pre-1', 'pre-2'].filter((d) => existsSync(join(base!, d, 'inventory.json'))).map((d) => trackerOf(join(base!, d)));
    reap.push(...new Set(trackers));
    expect(trackers.length).toBeGreaterThan(0);
    for (const t of trackers) expect(gone(t)).toBe(true);
    expect(vmasWithFlag(pid, 'uw')).toEqual([]);
    expect(existsSync(join(base, 'inventory.json'))).toBe(false);
    await settle(target.pid);
    target.kill('SIGTERM');
    expect(await target.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });

  it('refuses option mixes that make no sense', async () => {
    const a = await runCli(['dump', '-t', '1', '-D', '/nonexistent', '--max-passes', '3']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--max-passes and --max-downtime go with --iterative/);
    const b = await runCli(['dump', '-t', '1', '-D', '/nonexistent', '--iterative', '--prev-images-dir', '../x']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/does not take --prev-images-dir/);
  });
});

describe('iterative stop rules', () => {
  it('predicts the dirty set from the rate, capped at the set seen', () => {
    expect(predictDirtyPages(1000, 1000, 100)).toBe(100);
    expect(predictDirtyPages(1000, 100, 500)).toBe(1000); // saturated: never more than seen
    expect(predictDirtyPages(10, 0, 100)).toBe(10);
  });
  it('calls a loop stalled after two passes without shrinking by a tenth', () => {
    expect(stalled([100, 95])).toBe(false);
    expect(stalled([100, 95, 92])).toBe(true);
    expect(stalled([100, 80, 79])).toBe(false);
    expect(stalled([100, 95, 50])).toBe(false);
  });
});
