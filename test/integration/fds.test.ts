// File descriptors of every supported kind (test/fixtures/fx_fds.c): each victim checks its
// own fds after a dump + restore, and after a pre-dump chain + lazy restore. The victims are
// first shown to judge themselves (PASS alone, FAIL when their state is damaged). Unsupported
// kinds make the dump fail, naming fd, kind and pid, with the process left running; a pipe
// whose other end is outside needs --inherit-fd at restore.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { closeSync, readSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { holdersOf, pipeHolders } from '../../src/dump/fds/pipes.js';
import { AF, encodeUnixName, MSG, SOCK } from '../../src/kernel/sockets.js';
import type { SetSummary } from '../../src/images/describe.js';
import { CliProcess, cliPath, killAndReap, removeDir, runCli, startCli, tempDir } from '../helpers/cli.js';
import { fdCases, fdCmd, unsupportedCases, type FdCase } from '../helpers/fd-cases.js';
import { PASSED, VERDICT } from '../helpers/fixture-cases.js';
import { procState, waitAsleep } from '../helpers/process-state.js';
import { startTarget, type Target } from '../helpers/target.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * Starts fx_fds MODE in a fresh directory and waits until it is ready. With outsideSocket, a
 * datagram socket of ours waits at DIR/outside.sock for the victim to connect to (`outside`).
 */
async function start(mode: string, extra: string[] = [], env: Record<string, string> = {}, outsideSocket = false): Promise<{ t: Target; dir: string; outside?: number }> {
  const dir = tempDir('criu-ts-fx-fds-');
  cleanups.push(() => removeDir(dir));
  let outside: number | undefined;
  if (outsideSocket) {
    const s = (outside = native.socket(AF.UNIX, SOCK.DGRAM | SOCK.CLOEXEC, 0));
    cleanups.push(() => closeSync(s));
    native.bind(s, encodeUnixName({ path: join(dir, 'outside.sock') }));
  }
  const t = await startTarget(fdCmd(), [mode, dir, ...extra], { ...process.env, ...env });
  cleanups.push(() => t.stop());
  await t.waitFor(/^(ready|skip:.*)$/);
  return { t, dir, outside };
}

/** The datagrams waiting on our outside socket. */
function datagrams(fd: number): string[] {
  const out: string[] = [];
  const buf = Buffer.alloc(256);
  for (;;) {
    try {
      out.push(buf.toString('utf8', 0, native.recv(fd, buf, 0, MSG.DONTWAIT)));
    } catch {
      return out;
    }
  }
}

/** SIGTERM once it sleeps (busy victims: at once, they look at the flag at every signal). */
async function verdictOf(pid: number, out: () => string[], done: Promise<unknown>, busy?: boolean): Promise<string> {
  if (!busy) await waitAsleep(pid);
  process.kill(pid, 'SIGTERM');
  await done;
  return out().filter((l) => VERDICT.test(l)).at(-1) ?? `no verdict: ${out().join(' | ')}`;
}

describe('fx_fds judges itself', () => {
  for (const c of fdCases) {
    it(`${c.mode}: PASS alone, FAIL when damaged`, async () => {
      for (const broken of [false, true]) {
        const { t } = await start(c.mode, [], broken ? { FX_BREAK: c.mode } : {}, c.outsideSocket);
        const v = await verdictOf(t.pid, () => t.lines, t.exited, c.busy);
        if (broken) expect(v, t.lines.join('\n')).toMatch(/^FAIL: /);
        else expect(v, t.lines.join('\n')).toMatch(PASSED);
      }
    });
  }
});

type Mode = 'dump' | 'chain-lazy';

async function cycle(c: FdCase, mode: Mode): Promise<void> {
  const { t, outside: outsideSocket } = await start(c.mode, c.extra, {}, c.outsideSocket);
  const pid = t.pid;
  if (!c.busy) await waitAsleep(pid);
  const images = tempDir();
  cleanups.push(() => removeDir(images));
  let prev: string[] = [];
  if (mode === 'chain-lazy') {
    for (const pass of ['1', '2']) {
      const r = await runCli(['pre-dump', '-t', String(pid), '-D', join(images, pass), ...prev]);
      expect(r.code, `pre-dump ${pass}: ${r.stderr}`).toBe(0);
      prev = ['--prev-images-dir', `../${pass}`];
    }
    if (!c.busy) await waitAsleep(pid);
  }
  const final = join(images, 'final');
  const d = await runCli(['dump', '-t', String(pid), '-D', final, '--shell-job', ...prev]);
  expect(d.code, d.stderr).toBe(0);
  expect(d.stderr).not.toMatch(/Warn|Error|note:/);
  await t.exited;

  if (mode === 'dump') {
    // show lists the fds with their kinds.
    const s = JSON.parse((await runCli(['show', '-D', final, '--json'])).stdout) as SetSummary;
    expect(s.processes[0]!.fds.filter((f) => f.fd >= 10).map((f) => f.kind.split(' ')[0])).toEqual(c.kinds);
  }
  const r = startCli(['-v2', 'restore', '-D', final, '--shell-job', ...(mode === 'chain-lazy' ? ['--lazy'] : [])]);
  cleanups.push(() => killAndReap(pid));
  await r.waitFor('err', /restored pid/);
  // inet: the restored listener takes a connection from outside too.
  let outside: Promise<string> | undefined;
  if (c.extra?.includes('outside')) outside = pingFromOutside(Number(/^port (\d+)$/.exec(t.lines.find((l) => l.startsWith('port '))!)![1]));
  const v = await verdictOf(pid, () => r.out, r.exited, c.busy);
  expect(v, `${r.out.join(' | ')}\n${r.err.join('\n')}`).toMatch(PASSED);
  if (outside) expect(await outside).toBe('pong');
  // The restored datagram socket still sends to our socket outside.
  if (outsideSocket !== undefined) expect(datagrams(outsideSocket)).toEqual(['to outside', 'again']);
}

/** Connects to the restored listener from here, sends "ping", resolves with the answer. */
function pingFromOutside(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write('ping'));
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    setTimeout(() => s.destroy(), 15_000);
  });
}

describe('dump + restore: every fd kind', () => {
  for (const c of fdCases) it(c.mode, () => cycle(c, 'dump'));
});

describe('pre-dump, pre-dump, dump + lazy restore: every fd kind', () => {
  for (const c of fdCases) it(c.mode, () => cycle(c, 'chain-lazy'));
});

describe('unsupported kinds make the dump fail before anything is harmed', () => {
  for (const u of unsupportedCases) {
    it(u.kind, async (ctx) => {
      const { t } = await start('unsupported', [u.kind]);
      if (t.lines.some((l) => l.startsWith('skip:'))) return ctx.skip();
      await waitAsleep(t.pid);
      const images = tempDir();
      cleanups.push(() => removeDir(images));
      const d = await runCli(['dump', '-t', String(t.pid), '-D', images, '--shell-job']);
      expect(d.code).toBe(1);
      expect(d.stderr).toMatch(new RegExp(`fd \\d+ of pid ${t.pid} ${u.named.source}`));
      expect(d.stderr).toMatch(`dump of ${t.pid} failed; the process was left running`);
      // Running, untraced, intact.
      const st = await waitAsleep(t.pid);
      expect(st.tracerPid).toBe(0);
      t.kill('SIGTERM');
      expect(await t.waitFor(VERDICT)).toBe('PASS');
    });
  }

  it('--tcp-established: a connection with both ends in the process, next to its listener, comes back', async () => {
    const { t } = await start('unsupported', ['tcp-established']);
    await waitAsleep(t.pid);
    const images = tempDir();
    cleanups.push(() => removeDir(images));
    const d = await runCli(['dump', '-t', String(t.pid), '-D', images, '--shell-job', '--tcp-established']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/note: 2 established TCP connection\(s\) saved/);
    await t.exited;
    const r = startCli(['-v2', 'restore', '-D', images, '--shell-job']);
    cleanups.push(() => killAndReap(t.pid));
    await r.waitFor('err', /restored pid/);
    await waitAsleep(t.pid);
    process.kill(t.pid, 'SIGTERM');
    const [code] = await r.exited;
    expect(r.out.filter((l) => VERDICT.test(l)).at(-1), r.err.join('\n')).toMatch(PASSED);
    expect(code).toBe(0);
  });
});

describe('a pipe whose other end is outside the process', () => {
  it('has its holders found by one scan before the freeze, as the scan for one pipe finds them', async () => {
    // a's stdout is a pipe whose read end b holds (ours are closed once they have them).
    const [r, w] = native.pipe2(0);
    const a = spawn('sleep', ['30'], { stdio: ['ignore', w, 'ignore'] });
    const b = spawn('sleep', ['30'], { stdio: [r, 'ignore', 'ignore'] });
    closeSync(r);
    closeSync(w);
    const gone = Promise.all([a, b].map((c) => new Promise((r) => c.once('exit', r))));
    try {
      await Promise.all([a, b].map((c) => new Promise((r) => c.once('spawn', r))));
      const link = readlinkSync(`/proc/${a.pid}/fd/1`);
      expect(link).toMatch(/^pipe:\[\d+\]$/);
      expect(pipeHolders(a.pid!).get(link)).toEqual([b.pid]);
      expect(holdersOf(a.pid!, link)).toEqual([b.pid]);
    } finally {
      a.kill('SIGKILL');
      b.kill('SIGKILL');
      await gone;
    }
  });

  it('is dumped with a note; restore needs --inherit-fd, and then gives the process that fd', async () => {
    const dir = tempDir('criu-ts-fx-fds-');
    cleanups.push(() => removeDir(dir));
    const t = await startTarget(fdCmd(), ['pipe-outside', dir]);
    cleanups.push(() => t.stop());
    await t.waitFor('pipe-ready');
    // The read end goes to us; the victim closes its own copy.
    const pidfd = native.pidfdOpen(t.pid);
    const theirs = native.pidfdGetfd(pidfd, 8);
    closeSync(pidfd);
    cleanups.push(() => closeSync(theirs));
    t.kill('SIGUSR1');
    await t.waitFor(/^ready$/);
    await waitAsleep(t.pid);
    const images = tempDir();
    cleanups.push(() => removeDir(images));
    const d = await runCli(['dump', '-t', String(t.pid), '-D', images, '--shell-job']);
    expect(d.code, d.stderr).toBe(0);
    const key = /--inherit-fd fd\[N\]:(pipe:\[\d+\])/.exec(d.stderr)?.[1];
    // The other end's holder named (us: found before the freeze).
    expect(d.stderr).toMatch(new RegExp(`note: fd 7 is one end of pipe:\\[\\d+\\], whose other end is outside the process \\(pid ${process.pid} \\(`));
    await t.exited;

    const refused = await runCli(['restore', '-D', images, '--shell-job']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(`fd 7 was one end of ${key}, whose other end was outside the process: give its new end with --inherit-fd fd[N]:${key}`);
    expect(procState(t.pid)).toBeNull();

    const [r, w] = native.pipe2(0);
    cleanups.push(() => closeSync(r));
    const proc = spawn(process.execPath, [cliPath, '-v2', 'restore', '-D', images, '--shell-job', '--inherit-fd', `fd[7]:${key}`], {
      stdio: ['pipe', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', w],
    });
    closeSync(w);
    const restore = new CliProcess(proc);
    cleanups.push(() => killAndReap(t.pid));
    await restore.waitFor('err', /restored pid/);
    const v = await verdictOf(t.pid, () => restore.out, restore.exited);
    expect(v, restore.err.join('\n')).toBe('PASS');
    const buf = Buffer.alloc(64);
    expect(buf.toString('utf8', 0, readSync(r, buf))).toBe('via fd 7\n');
  });
});
