// Lazy restore on real processes: every fixture, a chain, memory events while pages arrive,
// a page server killed mid-stream, completion without a single touch, a 1 GiB process.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { decodeStatus } from '../../src/kernel/wait.js';
import { caseDir, fixtureCases, PASSED, VERDICT, waitAsleep } from '../helpers/fixture-cases.js';
import { fixture } from '../helpers/fixtures.js';
import { killAndReap, removeDir, runCli, startCli, tempDir, type CliProcess } from '../helpers/cli.js';
import { startTarget, type Target } from '../helpers/target.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Starts a victim and dumps it (--shell-job); returns its pid and the set. */
async function dumped(cmd: string, args: string[], opts: { spins?: boolean; chain?: boolean } = {}): Promise<{ pid: number; dir: string; target: Target }> {
  const images = tempDir();
  cleanups.push(() => removeDir(images));
  const target = await startTarget(cmd, args);
  cleanups.push(() => target.stop());
  await target.waitFor('ready');
  if (!opts.spins) await waitAsleep(target.pid);
  let prev: string[] = [];
  if (opts.chain) {
    for (const pass of ['1', '2']) {
      const r = await runCli(['pre-dump', '-t', String(target.pid), '-D', join(images, pass), ...prev]);
      expect(r.code, r.stderr).toBe(0);
      prev = ['--prev-images-dir', `../${pass}`];
    }
  }
  const d = await runCli(['dump', '-t', String(target.pid), '-D', join(images, 'final'), '--shell-job', ...prev]);
  expect(d.code, d.stderr).toBe(0);
  await target.exited;
  return { pid: target.pid, dir: join(images, 'final'), target };
}

function lazyRestore(dir: string, pid: number, extra: string[] = []): CliProcess {
  const r = startCli(['-v2', 'restore', '-D', dir, '--shell-job', '--lazy', ...extra]);
  cleanups.push(() => killAndReap(pid));
  return r;
}

async function verdict(r: CliProcess, pid: number, spins = false): Promise<void> {
  if (!spins) await waitAsleep(pid);
  process.kill(pid, 'SIGTERM');
  const [code] = await r.exited;
  expect(r.out.filter((l) => VERDICT.test(l)).at(-1), `${r.out.join(' | ')}\n${r.err.join('\n')}`).toMatch(PASSED);
  expect(code).toBe(0);
}

/** Waits until pid is gone or a zombie; reaps it if it is ours. Returns its wait status, if reaped. */
async function waitDead(pid: number, timeoutMs = 20_000): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { pid: got, status } = (() => {
      try {
        return native.waitpid(pid, 1);
      } catch {
        return { pid: -1, status: 0 };
      }
    })();
    if (got === pid) return status;
    if (got === -1 && !existsSync(`/proc/${pid}`)) return undefined;
    if (Date.now() > deadline) throw new Error(`pid ${pid} still alive`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('restore --lazy: every fixture verifies itself', () => {
  for (const c of fixtureCases) {
    it(c.name, async () => {
      const cd = caseDir(c);
      cleanups.push(() => cd.remove());
      const { pid, dir } = await dumped(c.cmd, c.args(cd.dir), { spins: c.spins });
      const r = lazyRestore(dir, pid);
      await r.waitFor('err', /restored pid/);
      if (c.exchange) {
        r.write(c.exchange.send);
        const reply = c.exchange.reply;
        await r.waitFor('out', typeof reply === 'string' ? new RegExp(`^${reply}$`) : reply);
      }
      await verdict(r, pid, c.spins);
    });
  }
});

describe('restore --lazy', () => {
  it('restores a pre-dump chain of a process that keeps writing', async () => {
    const { pid, dir } = await dumped(fixture('fx_scribble'), ['64'], { spins: true, chain: true });
    const r = lazyRestore(dir, pid);
    await r.waitFor('err', /restored pid/);
    await verdict(r, pid, true);
  });

  it('serves a process that forks, mremaps, munmaps and madvises while its pages arrive', async () => {
    const { pid, dir } = await dumped(fixture('fx_lazy_events'), ['32']);
    const r = lazyRestore(dir, pid);
    await r.waitFor('err', /restored pid/);
    r.write('go\n');
    await r.waitFor('out', /^(events done|FAIL)/);
    await verdict(r, pid);
    expect(r.err.join('\n')).toMatch(/lazy pages of \d+/);
  });

  it('brings all memory in without a single touch, then the server exits (-d)', async () => {
    const files = tempDir();
    cleanups.push(() => removeDir(files));
    const { pid, dir } = await dumped(fixture('fx_memory'), ['64', files]);
    const r = startCli(['-v2', 'restore', '-D', dir, '--shell-job', '--lazy', '-d', '--json']);
    cleanups.push(() => killAndReap(pid));
    const [code] = await r.exited;
    expect(code, r.err.join('\n')).toBe(0);
    const report = JSON.parse(r.out.join('\n')) as { pid: number; serverPid: number };
    expect(report.pid).toBe(pid);
    await waitDead(report.serverPid);
    expect(readFileSync(join(dir, 'restore.log'), 'utf8')).toMatch(new RegExp(`lazy pages of ${pid} all in`));
    // Every page is in (and no server any more): it still verifies all of it.
    await waitAsleep(pid);
    process.kill(pid, 'SIGTERM');
    await r.waitFor('out', VERDICT, 30_000, true);
    expect(r.out.filter((l) => VERDICT.test(l)).at(-1)).toMatch(PASSED);
  });

  it('kills the process, never leaves it on zero pages, when the server dies mid-stream', async () => {
    const { pid, dir } = await dumped(fixture('fx_lazy_events'), ['96']);
    const r = startCli(['-v2', 'restore', '-D', dir, '--shell-job', '--lazy', '-d', '--json']);
    cleanups.push(() => killAndReap(pid));
    const [code] = await r.exited;
    expect(code, r.err.join('\n')).toBe(0);
    const { serverPid } = JSON.parse(r.out.join('\n')) as { serverPid: number };
    process.kill(serverPid, 'SIGKILL');
    await waitDead(serverPid);
    const status = await waitDead(pid);
    if (status !== undefined) expect(decodeStatus(status)).toEqual({ kind: 'signaled', signal: 9, core: false });
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(readFileSync(join(dir, 'restore.log'), 'utf8')).toMatch(new RegExp(`page server \\(pid ${serverPid}\\) died before all memory was in; killed pid ${pid}`));
  });

  it('works in two steps, CRIU style: lazy-pages first, then restore --lazy-pages', async () => {
    const { pid, dir } = await dumped(fixture('fx_scribble'), ['64'], { spins: true });
    const server = startCli(['-v2', 'lazy-pages', '-D', dir]);
    cleanups.push(() => void server.proc.kill('SIGKILL'));
    await server.waitFor('err', /waiting for the restore/);
    const r = startCli(['-v2', 'restore', '-D', dir, '--shell-job', '--lazy-pages']);
    cleanups.push(() => killAndReap(pid));
    await r.waitFor('err', /restored pid/);
    await verdict(r, pid, true);
    const [code] = await server.exited;
    expect(code, server.err.join('\n')).toBe(0);
    expect(server.err.join('\n')).toMatch(new RegExp(`lazy pages of ${pid} (all in|stopped)`));
  });

  it('restores a 1 GiB process lazily', async () => {
    const { pid, dir } = await dumped(fixture('fx_scribble'), ['1024'], { spins: true });
    const r = lazyRestore(dir, pid);
    await r.waitFor('err', /restored pid/);
    await verdict(r, pid, true);
  }, 120_000);
});
