// Process trees: a root with two children and a grandchild, a zombie, a child in its own
// group and one in its own session, shared anonymous memory written by both sides; through
// dump + restore, lazy restore, and a dump that leaves the tree running.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { fixture } from '../helpers/fixtures.js';
import { killAndReap, removeDir, runCli, startCli, tempDir } from '../helpers/cli.js';
import { PASSED, VERDICT, waitAsleep } from '../helpers/fixture-cases.js';
import { startTarget, type Target } from '../helpers/target.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The tree's processes come back to us (a subreaper) when their parents die: collect them. */
function reapAll(pids: number[]): void {
  for (const p of pids) {
    try {
      native.waitpid(p, 1);
    } catch {
      /* not ours, or gone */
    }
  }
}

async function startTree(): Promise<{ target: Target; pids: number[] }> {
  const target = await startTarget(fixture('fx_tree'));
  cleanups.push(() => target.stop());
  await target.waitFor('ready');
  const pids = (await target.waitFor(/^pids /)).split(' ').slice(1).map(Number);
  cleanups.push(() => pids.forEach(killAndReap));
  await waitAsleep(target.pid);
  return { target, pids };
}

/** Restores the tree in the foreground, SIGTERM to the root: its verdict covers the whole tree. */
async function restoreAndVerify(dir: string, root: number, extra: string[]): Promise<void> {
  const r = startCli(['-v2', 'restore', '-D', dir, '--shell-job', ...extra]);
  await r.waitFor('err', /restored pid \d+ and 4 more/);
  await waitAsleep(root);
  process.kill(root, 'SIGTERM');
  const [code] = await r.exited;
  expect(r.out.filter((l) => VERDICT.test(l)).at(-1), r.out.join(' | ')).toMatch(PASSED);
  expect(code).toBe(0);
}

describe('process trees', () => {
  for (const mode of ['eager', 'lazy'] as const) {
    it(`dump + ${mode} restore: every process with its pid, parent, group, session; the zombie; shared memory`, async () => {
      const images = tempDir();
      cleanups.push(() => removeDir(images));
      const { target, pids } = await startTree();
      const d = await runCli(['dump', '-t', String(target.pid), '-D', join(images, 'd'), '--shell-job', '--json']);
      expect(d.code, d.stderr).toBe(0);
      expect((JSON.parse(d.stdout) as { stats: Record<string, number> }).stats.processes).toBe(5);
      await target.exited;
      reapAll(pids);
      const show = JSON.parse((await runCli(['show', '-D', join(images, 'd'), '--json'])).stdout) as { processes: Array<{ pid: number }> };
      expect(show.processes.map((p) => p.pid).sort()).toEqual([...pids].sort());

      await restoreAndVerify(join(images, 'd'), target.pid, mode === 'lazy' ? ['--lazy'] : []);
    });
  }

  it('pre-dump, pre-dump, dump of the tree (a tracker per process), then lazy restore', async () => {
    const images = tempDir();
    cleanups.push(() => removeDir(images));
    const { target, pids } = await startTree();
    for (const pass of ['1', '2']) {
      const r = await runCli(['pre-dump', '-t', String(target.pid), '-D', join(images, pass), ...(pass === '2' ? ['--prev-images-dir', '../1'] : []), '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/was lost/);
      const inv = JSON.parse(readFileSync(join(images, pass, 'inventory.json'), 'utf8')) as { tracking: Array<{ targetPid: number; trackerPid: number }> };
      expect(inv.tracking.map((t) => t.targetPid).sort()).toEqual(pids.filter((p) => p !== pids[4]).sort()); // all but the zombie
      cleanups.push(() => inv.tracking.forEach((t) => killAndReap(t.trackerPid)));
    }
    await waitAsleep(target.pid);
    const d = await runCli(['dump', '-t', String(target.pid), '-D', join(images, 'final'), '--prev-images-dir', '../2', '--shell-job', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect((JSON.parse(d.stdout) as { stats: Record<string, number> }).stats.pagesInParent).toBeGreaterThan(0);
    await target.exited;
    reapAll(pids);
    await restoreAndVerify(join(images, 'final'), target.pid, ['--lazy']);
  });

  it('dump --leave-running leaves the whole tree running and intact', async () => {
    const images = tempDir();
    cleanups.push(() => removeDir(images));
    const { target } = await startTree();
    const d = await runCli(['dump', '-t', String(target.pid), '-D', join(images, 'd'), '--shell-job', '-R']);
    expect(d.code, d.stderr).toBe(0);
    await waitAsleep(target.pid);
    target.kill('SIGTERM');
    expect(await target.waitFor(VERDICT)).toMatch(PASSED);
  });
});
