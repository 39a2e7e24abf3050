// Every self-verifying fixture (and the python3 program) through a real dump + restore, and
// through a pre-dump chain (two passes while it runs) + dump + restore, and through
// `dump --iterative` (the tool's own chain). Each victim checks its own state after the
// restore and answers PASS or FAIL.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { caseDir, fixtureCases, PASSED, VERDICT, waitAsleep, type FixtureCase } from '../helpers/fixture-cases.js';
import { killAndReap, removeDir, runCli, startCli, tempDir } from '../helpers/cli.js';
import { startTarget, type Target } from '../helpers/target.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Mode = 'dump' | 'chain' | 'iterative';

async function cycle(c: FixtureCase, mode: Mode): Promise<void> {
  const cd = caseDir(c);
  const images = tempDir();
  cleanups.push(() => cd.remove(), () => removeDir(images));
  const target: Target = await startTarget(c.cmd, c.args(cd.dir), { ...process.env, ...c.env });
  cleanups.push(() => target.stop());
  await target.waitFor('ready');
  const pid = target.pid;
  if (!c.spins) await waitAsleep(pid);
  let prev: string[] = [];
  if (mode === 'chain') {
    for (const pass of ['1', '2']) {
      const r = await runCli(['pre-dump', '-t', String(pid), '-D', join(images, pass), ...prev]);
      expect(r.code, `pre-dump ${pass}: ${r.stderr}`).toBe(0);
      expect(r.stderr).not.toMatch(/Warn|Error|note:/);
      prev = ['--prev-images-dir', `../${pass}`];
    }
    if (!c.spins) await waitAsleep(pid);
  }
  if (mode === 'iterative') prev = ['--iterative', '--max-passes', '3'];
  const d = await runCli(['dump', '-t', String(pid), '-D', join(images, 'final'), '--shell-job', ...prev]);
  expect(d.code, d.stderr).toBe(0);
  expect(d.stderr).not.toMatch(/Warn|Error|note:/);
  await target.exited;

  const r = startCli(['-v2', 'restore', '-D', join(images, 'final'), '--shell-job']);
  cleanups.push(() => killAndReap(pid));
  await r.waitFor('err', /restored pid/);
  if (c.exchange) {
    r.write(c.exchange.send);
    const reply = c.exchange.reply;
    await r.waitFor('out', typeof reply === 'string' ? new RegExp(`^${reply}$`) : reply);
    expect(r.out.filter((l) => l.startsWith('FAIL'))).toEqual([]);
  }
  if (!c.spins) await waitAsleep(pid);
  process.kill(pid, 'SIGTERM');
  const [code] = await r.exited;
  const verdicts = r.out.filter((l) => VERDICT.test(l));
  expect(verdicts.at(-1), `${c.name}: ${r.out.join(' | ')}`).toMatch(PASSED);
  expect(code).toBe(0);
}

describe('dump + restore: every fixture verifies itself', () => {
  for (const c of fixtureCases) it(c.name, () => cycle(c, 'dump'));
});

describe('pre-dump, pre-dump, dump + restore: every fixture verifies itself', () => {
  for (const c of fixtureCases) it(c.name, () => cycle(c, 'chain'));
});

describe('dump --iterative + restore: every fixture verifies itself', () => {
  for (const c of fixtureCases) it(c.name, () => cycle(c, 'iterative'));
});
