// Driving pre-dump chains through the CLI, and checking what they left behind.
import { settle } from './fixture-cases.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { SetSummary } from '../../src/images/describe.js';
import { runCli, startCli, type CliResult } from './cli.js';

export function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`criu-ts failed (${r.code}): ${r.stderr}`);
  return r;
}

export async function show(dir: string): Promise<SetSummary> {
  return JSON.parse(ok(await runCli(['show', '-D', dir, '--json'])).stdout) as SetSummary;
}

export const preDump = (pid: number, dir: string, prev?: string) =>
  runCli(['pre-dump', '-t', String(pid), '-D', dir, ...(prev ? ['--prev-images-dir', prev] : []), '--json']);

export const statsOf = (r: CliResult) => (JSON.parse(r.stdout) as { stats: Record<string, number> }).stats;

/** The address a fixture printed as "addr NAME 0x...", in `show`'s spelling. */
export function addrOf(lines: readonly string[], name: string): string {
  const line = lines.find((l) => l.startsWith(`addr ${name} `));
  if (!line) throw new Error(`fixture did not print addr ${name}`);
  return '0x' + BigInt(line.split(' ')[2]!).toString(16);
}

export const vmaAt = (s: SetSummary, start: string) => s.processes[0]!.vmas.find((v) => v.start === start);

/** VmFlags lines of /proc/PID/smaps that carry `flag` (e.g. uw: uffd-wp, um: uffd-missing). */
export function vmasWithFlag(pid: number, flag: string): string[] {
  return readFileSync(`/proc/${pid}/smaps`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('VmFlags:') && new RegExp(` ${flag}( |$)`).test(l));
}

/** The "Uid:" / "Gid:" / "Groups:" fields of /proc/PID/status. */
export function credsOf(pid: number): { uid: string; gid: string; groups: string } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => new RegExp(`^${k}:[ \\t]*(.*)$`, "m").exec(s)?.[1]?.trim().replace(/\s+/g, ' ') ?? '';
  return { uid: get('Uid'), gid: get('Gid'), groups: get('Groups') };
}

/**
 * Restores DIR in the foreground (`cleanup(pid)`: for the afterEach to kill and reap), lets `check` look
 * at the running process, sends SIGTERM and expects the fixture's PASS.
 */
export async function restoreAndVerify(dir: string, pid: number, cleanup: (pid: number) => void, check?: () => void): Promise<void> {
  const r = startCli(['-v2', 'restore', '-D', dir, '--shell-job']);
  await r.waitFor('err', /restored pid/);
  cleanup(pid);
  check?.();
  await settle(pid);
  process.kill(pid, 'SIGTERM');
  const [code] = await r.exited;
  const verdict = r.out.find((l) => l.startsWith('PASS') || l.startsWith('FAIL')) ?? `no verdict: ${r.out.join('|')} ${r.err.join('|')}`;
  expect(verdict).toBe('PASS');
  expect(code).toBe(0);
}

/** The catch-up sets a final dump into `dir` made (stats.catchUpPasses of them), newest first. */
export function catchUpDirs(dir: string, passes: number): string[] {
  return Array.from({ length: passes }, (_, i) => join(dir, passes - i === 1 ? 'catch-up' : `catch-up-${passes - i}`));
}
