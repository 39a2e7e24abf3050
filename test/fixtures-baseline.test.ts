// The fixtures judge themselves correctly: each PASSes when it is left alone (started,
// signalled, checked, no dump), and FAILs when one piece of its state is damaged, from outside
// (process_vm_writev, /proc/PID/mem, prlimit, a file, a stray signal) or by its FX_BREAK knob.
// Without this, a dump/restore test that sees PASS would prove nothing.
import { openSync, readSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../src/kernel/native.js';
import {
  caseDir,
  fixtureCase,
  fixtureCases,
  printedAddr,
  PASSED,
  STDIN_LINE,
  VERDICT,
  waitAsleep,
  type FixtureCase,
} from './helpers/fixture-cases.js';
import { startTarget, type Target } from './helpers/target.js';

let running: Target | undefined;
let cleanup: (() => void) | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
  cleanup?.();
  cleanup = undefined;
});

interface RunOptions {
  env?: Record<string, string>;
  /** Replaces the case's arguments. */
  args?: (dir: string) => string[];
  /** Runs once the fixture is ready, before the exchange and SIGTERM. */
  tamper?: (t: Target, dir: string) => Promise<void> | void;
  /** Skip the case's stdin exchange (the tamper step does its own). */
  noExchange?: boolean;
}

/** Starts a case, waits for ready, (tampers,) exchanges, sends SIGTERM: the verdict and status. */
async function run(c: FixtureCase, opts: RunOptions = {}): Promise<{ verdict: string; code: number | null; t: Target }> {
  const { dir, remove } = caseDir(c);
  cleanup = remove;
  const t = await startTarget(c.cmd, (opts.args ?? c.args)(dir), { ...process.env, ...c.env, ...opts.env });
  running = t;
  await t.waitFor(/^ready$/);
  if (!c.spins) await waitAsleep(t.pid);
  await opts.tamper?.(t, dir);
  if (c.exchange && !opts.noExchange) {
    t.write(c.exchange.send);
    await t.waitFor(c.exchange.reply);
  }
  if (!c.spins) await waitAsleep(t.pid);
  t.kill('SIGTERM');
  await t.waitFor(VERDICT);
  const code = await t.exited;
  // The last verdict: py_state also answers the exchange with one.
  const verdict = t.lines.filter((l) => VERDICT.test(l)).at(-1)!;
  return { verdict, code, t };
}

async function expectPass(c: FixtureCase, opts?: RunOptions): Promise<void> {
  const { verdict, code, t } = await run(c, opts);
  expect(verdict, t.lines.join('\n')).toMatch(PASSED);
  expect(code).toBe(0);
}

async function expectFail(c: FixtureCase, what: string | RegExp, opts?: RunOptions): Promise<void> {
  const { verdict, code, t } = await run(c, opts);
  expect(verdict, t.lines.join('\n')).toMatch(/^FAIL: /);
  expect(verdict).toMatch(what);
  expect(code).toBe(1);
}

/** Flips every bit of one byte of the target's memory through process_vm_writev. */
function flipByte(pid: number, addr: number): void {
  const b = Buffer.alloc(1);
  expect(native.processVmReadv(pid, b, 0, [addr, 1])).toBe(1);
  b[0] = ~b[0]! & 0xff;
  expect(native.processVmWritev(pid, b, 0, [addr, 1])).toBe(1);
}

/** The same through /proc/PID/mem, which writes through read-only mappings too. */
function flipByteViaMem(pid: number, addr: number): void {
  const fd = openSync(`/proc/${pid}/mem`, 'r+');
  try {
    const b = Buffer.alloc(1);
    expect(readSync(fd, b, 0, 1, addr)).toBe(1);
    b[0] = ~b[0]! & 0xff;
    expect(writeSync(fd, b, 0, 1, addr)).toBe(1);
  } finally {
    closeSync(fd);
  }
}

describe('fixtures left alone pass', () => {
  for (const c of fixtureCases) it(c.name, () => expectPass(c));
});

describe('fx_regs fails on a damaged register', () => {
  const c = fixtureCase('fx_regs');
  // The SIGTERM handler changes the value in the signal frame: the routine resumes with it.
  const cases: Array<[string, RegExp, string?]> = [
    ['gpr', /r13=/],
    ['xmm', /vector register 9 byte 0 differs \(xmm\)/],
    ['ymm', /vector register 5 byte 16 differs \(ymm upper\)/, 'avx'],
    ['zmm', /vector register 20 byte 40 differs \(zmm upper\)/, 'avx512'],
    ['k', /k3=/, 'avx512'],
    ['mxcsr', /mxcsr=/],
    ['x87', /x87 st\(3\)/],
    ['tls', /tls_var=/],
  ];
  for (const [knob, what, needs] of cases)
    it(`FX_BREAK=${knob}`, async () => {
      const { verdict, code, t } = await run(c, { env: { FX_BREAK: knob } });
      const level = t.lines.find((l) => l.startsWith('note vector level '))!.split(' ')[3]!;
      const has = level === 'avx512' || (needs === 'avx' && level === 'avx') || needs === undefined;
      if (!has) {
        expect(verdict).toMatch(PASSED); // the knob touches state this CPU does not have
        return;
      }
      expect(verdict).toMatch(what);
      expect(code).toBe(1);
    });
});

describe('fx_memory fails on damaged memory', () => {
  const c = fixtureCase('fx_memory');
  const small = (dir: string) => ['8', dir];
  for (const [name, region] of [
    ['big', 'big mmap'],
    ['heap', 'sbrk area'],
    ['stack', 'stack array'],
    ['cow', 'private file mapping'],
  ] as const)
    it(`a byte of the ${region}`, () =>
      expectFail(c, `content of the ${region} differs`, { args: small, tamper: (t) => flipByte(t.pid, printedAddr(t.lines, name)) }));

  it('a byte of the read-only area (through /proc/PID/mem)', () =>
    expectFail(c, 'content of the read-only area differs', {
      args: small,
      tamper: (t) => flipByteViaMem(t.pid, printedAddr(t.lines, 'ro')),
    }));

  it('FX_BREAK=brk', () => expectFail(c, /brk is .*, was/, { args: small, env: { FX_BREAK: 'brk' } }));
});

describe('fx_blocked fails on an early return of its call', () => {
  // A SIGUSR1 (handler without SA_RESTART) makes the call return EINTR before SIGTERM.
  for (const mode of ['nanosleep', 'pipe-read', 'poll', 'sigsuspend']) {
    const c = fixtureCase(`fx_blocked ${mode}`);
    const interrupt = async (t: Target) => {
      t.kill('SIGUSR1');
      await t.waitFor(/^note spurious return/);
    };
    it(`${mode}: SIGUSR1`, () => expectFail(c, 'before SIGTERM', { tamper: interrupt }));
    if (mode === 'nanosleep' || mode === 'poll')
      it(`${mode}: SIGUSR1 with FX_EINTR_OK=1 passes`, () => expectPass(c, { env: { FX_EINTR_OK: '1' }, tamper: interrupt }));
  }

  it('stdin-read: another line', () =>
    expectFail(fixtureCase('fx_blocked stdin-read'), `read on stdin got 'the quick`, {
      noExchange: true,
      tamper: async (t) => {
        t.write(`${STDIN_LINE.replace('fox', 'cat')}\n`);
        await t.waitFor('got wrong line');
      },
    }));
});

describe('fx_signals fails on changed signal state', () => {
  const c = fixtureCase('fx_signals');
  it('a SIGALRM from outside resets its SA_RESETHAND handler', () =>
    expectFail(c, /signal 14: handler/, { tamper: (t) => t.kill('SIGALRM') }));

  it('an extra SIGRTMIN+2 from outside is one queued signal too many', () =>
    expectFail(c, /signal \d+ still pending/, {
      tamper: (t) => {
        const rtmin = Number(t.lines.find((l) => l.startsWith('sigrtmin '))!.split(' ')[1]);
        process.kill(t.pid, rtmin + 2);
      },
    }));
});

describe('fx_proc fails on changed process state', () => {
  const c = fixtureCase('fx_proc');
  it('an rlimit changed from outside', () =>
    expectFail(c, 'RLIMIT_NOFILE 100/', { tamper: (t) => void execFileSync('prlimit', ['--pid', String(t.pid), '--nofile=100:']) }));
  for (const [knob, what] of [
    ['rseq', 'rseq area no longer registered'],
    ['umask', 'umask 022'],
    ['robust', 'robust list'],
    ['name', "name 'fx-broken'"],
    ['cwd', 'cwd'],
  ] as const)
    it(`FX_BREAK=${knob}`, () => expectFail(c, what, { env: { FX_BREAK: knob } }));
});

describe('fx_files fails on changed files and fds', () => {
  const c = fixtureCase('fx_files');
  it('ro.txt overwritten from outside', () =>
    expectFail(c, "ro.txt at fd 3's offset differs", {
      tamper: (_t, dir) => {
        const fd = openSync(join(dir, 'ro.txt'), 'r+');
        writeSync(fd, 'XXXX', 150);
        closeSync(fd);
      },
    }));
  it('FX_BREAK=offset', () => expectFail(c, 'fd 7: offset 4322, was 4321', { env: { FX_BREAK: 'offset' } }));
  it('FX_BREAK=cloexec', () => expectFail(c, 'fd 3: fd flags 0x1, were 0', { env: { FX_BREAK: 'cloexec' } }));
  it('log.txt rewritten from outside', () =>
    expectFail(c, 'log.txt after an O_APPEND write', {
      tamper: (_t, dir) => writeFileSync(join(dir, 'log.txt'), 'replaced\n'),
    }));
});

describe('py_state fails on a changed dict', () => {
  it('FX_BREAK=dict', () => expectFail(fixtureCase('py_state'), 'dict checksum', { env: { FX_BREAK: 'dict' } }));
});
