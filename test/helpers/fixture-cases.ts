// The self-verifying victims (test/fixtures/fx_*.c, py_state.py) and how to drive them, shared
// by the baseline test (run without a dump) and the dump/restore tests.
//
// Protocol (see test/fixtures/fixture.h): the victim prints "ready" (after optional
// "addr NAME 0x..." and "note ..." lines), then sits in the call it is about. Dump and restore
// it there (with --shell-job: after the restore its stdio are the restorer's). Then, if the case
// has an `exchange`, write `send` to its stdin and wait for the `reply` line; then SIGTERM; it
// answers with one verdict line, "PASS" (py_state: "PASS <counter> <checksum>") or
// "FAIL: <what differs>", and exits 0 on PASS, 1 on FAIL.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, fixturesDir } from './fixtures.js';

export interface FixtureCase {
  /** Test name: the fixture and its variant. */
  name: string;
  cmd: string;
  /** `dir` is a fresh directory for the case's files (see needsDir), else ''. */
  args(dir: string): string[];
  /** The victim keeps files or its cwd in a directory: create one, remove it afterwards. */
  needsDir?: boolean;
  env?: Record<string, string>;
  /** After ready (after the restore, in a dump test): write `send` to stdin, wait for `reply`. */
  exchange?: { send: string; reply: string | RegExp };
  /** It waits in a user-mode spin loop, never asleep (see waitAsleep). */
  spins?: boolean;
}

/** The line fx_blocked stdin-read expects on its stdin. */
export const STDIN_LINE = 'the quick brown fox jumps over the lazy dog 0123456789';

/** A verdict line, and a passing one. */
export const VERDICT = /^(PASS|FAIL)\b/;
export const PASSED = /^PASS( |$)/;

/** The system python3 (pyenv's shim in PATH would add a shell and an exec on the way). */
export const python3 = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export const fixtureCases: FixtureCase[] = [
  { name: 'fx_regs', cmd: fixture('fx_regs'), args: () => [], spins: true },
  { name: 'fx_regs avx', cmd: fixture('fx_regs'), args: () => ['avx'], spins: true },
  { name: 'fx_regs sse', cmd: fixture('fx_regs'), args: () => ['sse'], spins: true },
  { name: 'fx_memory', cmd: fixture('fx_memory'), args: (dir) => ['32', dir], needsDir: true },
  ...['nanosleep', 'pipe-read', 'poll', 'sigsuspend', 'own-stack'].map((mode) => ({
    name: `fx_blocked ${mode}`,
    cmd: fixture('fx_blocked'),
    args: () => [mode],
  })),
  {
    name: 'fx_blocked stdin-read',
    cmd: fixture('fx_blocked'),
    args: () => ['stdin-read'],
    exchange: { send: `${STDIN_LINE}\n`, reply: `got ${STDIN_LINE}` },
  },
  { name: 'fx_signals', cmd: fixture('fx_signals'), args: () => [] },
  { name: 'fx_proc', cmd: fixture('fx_proc'), args: (dir) => [dir], needsDir: true },
  { name: 'fx_files', cmd: fixture('fx_files'), args: (dir) => [dir], needsDir: true },
  { name: 'fx_threads', cmd: fixture('fx_threads'), args: () => [] },
  {
    name: 'py_threads',
    cmd: python3,
    args: () => [join(fixturesDir, 'py_threads.py')],
    exchange: { send: 'prove\n', reply: /^(PASS \d+ [0-9a-f]+|FAIL.*)$/ },
  },
  {
    name: 'py_state',
    cmd: python3,
    args: () => [join(fixturesDir, 'py_state.py')],
    exchange: { send: 'prove\n', reply: /^(PASS \d+ [0-9a-f]+|FAIL.*)$/ },
  },
];

export function fixtureCase(name: string): FixtureCase {
  const c = fixtureCases.find((x) => x.name === name);
  if (!c) throw new Error(`no fixture case ${name}`);
  return c;
}

/** A fresh directory for a case that needs one; call the result to remove it. */
export function caseDir(c: FixtureCase): { dir: string; remove(): void } {
  if (!c.needsDir) return { dir: '', remove() {} };
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-fx-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Resolves once the process sleeps (state S), i.e. is inside the call it waits in. "ready" comes
 * just before that call: a signal sent in between would be handled before the call starts
 * (and a nanosleep of an hour would then sleep it out). Not for `spins` cases.
 */
export async function waitAsleep(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'S') return;
    if (Date.now() > deadline) throw new Error(`process ${pid} does not go to sleep (state ${state})`);
    await sleep(2);
  }
}

/** The address a fixture printed as "addr NAME 0x...". */
export function printedAddr(lines: readonly string[], name: string): number {
  const line = lines.find((l) => l.startsWith(`addr ${name} `));
  if (!line) throw new Error(`no "addr ${name}" line in:\n${lines.join('\n')}`);
  return Number(BigInt(line.split(' ')[2]!));
}

/**
 * Before a SIGTERM: waits until the process sleeps in its blocking call (see waitAsleep),
 * or, for a victim that never sleeps (a busy loop that looks at its flag all the time), a
 * little while. A SIGTERM that lands just before the blocking call would be missed.
 */
export async function settle(pid: number, maxMs = 3000): Promise<void> {
  try {
    await waitAsleep(pid, maxMs);
  } catch {
    /* busy: it sees the flag at once */
  }
}
