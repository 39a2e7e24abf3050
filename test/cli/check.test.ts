// `criu-ts check` as a user runs it: the built CLI in a subprocess (npm test builds first).
// The subprocess is a child_process child, but nothing here ptraces it: the probes ptrace
// their own stub children inside it.
import { accessSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROBE_NAMES, type CheckReport } from '../../src/check/index.js';
import { packageRoot } from '../../src/paths.js';

const root = packageRoot();
const bin = join(root, 'bin', 'criu-ts.js');

function run(args: string[], env: Record<string, string> = {}, prefix: string[] = []) {
  const [cmd, ...rest] = [...prefix, process.execPath, bin, ...args];
  return execa(cmd!, rest, { reject: false, env: { ...process.env, ...env }, extendEnv: false, stdin: 'ignore', timeout: 60_000 });
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
});

describe('criu-ts check', () => {
  it('--json parses and reports every probe ok on this machine', async () => {
    const r = await run(['check', '--json']);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as CheckReport;
    const notOk = report.probes.filter((p) => p.status !== 'ok').map((p) => `${p.name}: ${p.reason}`);
    expect(notOk).toEqual([]);
    expect(report.probes.map((p) => p.name)).toEqual(PROBE_NAMES);
    expect(report).toMatchObject({ ok: true, requiredMissing: [], optionalMissing: [], missingCapabilities: [] });
    expect(r.exitCode).toBe(0);
  });

  it('prints each probe and `Looks good.` on stderr, nothing on stdout', async () => {
    const r = await run(['check']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('Looks good.');
    for (const name of PROBE_NAMES) expect(lines.some((l) => l.startsWith(name + ' ') && / ok /.test(l))).toBe(true);
  });

  it('--feature NAME checks that one only', async () => {
    const r = await run(['check', '--feature', 'uffd-wp-async', '--json']);
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout) as CheckReport;
    expect(report.probes.map((p) => [p.name, p.status])).toEqual([['uffd-wp-async', 'ok']]);
  });

  it('--feature with a bad name is a clear usage error', async () => {
    const r = await run(['check', '--feature', 'soft-dirty']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^criu-ts: unknown feature 'soft-dirty'; known features: ptrace, /)]);
  });

  it('--help works for check', async () => {
    const r = await run(['check', '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Usage: criu-ts check \[options\]/);
    expect(r.stdout).toContain('--feature <name>');
    expect(r.stdout).toContain('--json');
  });

  it('names what will not work when an optional feature is missing, and still exits 0', async () => {
    const r = await run(['check'], { CRIU_TS_FORCE_MISSING: 'uffd-wp-async' });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/^uffd-wp-async\s+missing\s+forced/m);
    expect(r.stderr).toContain('Optional feature uffd-wp-async is missing: pre-dump');
    expect(r.stderr).not.toContain('Looks good.');
  });

  it('exits 1 when a required feature is missing', async () => {
    const r = await run(['check', '--json'], { CRIU_TS_FORCE_MISSING: 'clone3-set-tid,zstd' });
    expect(r.exitCode).toBe(1);
    const report = JSON.parse(r.stdout) as CheckReport;
    expect(report).toMatchObject({ ok: false, requiredMissing: ['clone3-set-tid', 'zstd'] });
  });

  it('writes the log file with -o', async () => {
    const log = join(root, 'dist', `check-test-${process.pid}.log`);
    const r = await run(['check', '--feature', 'zstd', '-o', log, '-v0']);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(log, 'utf8')).toMatch(/check: probe zstd: ok/);
    rmSync(log);
  });
});

describe('criu-ts check as an unprivileged user', () => {
  // setpriv drops every capability with the uid change. The package must be readable by
  // nobody for this (a clone under /root is not): then the test has nothing to show.
  const setpriv = ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  const usable = (() => {
    if (process.geteuid?.() !== 0 || !existsSync(setpriv[0]!)) return false;
    try {
      accessSync(bin);
      return true;
    } catch {
      return false;
    }
  })();

  it.runIf(usable)('says clearly which capability is missing, without a crash', async (ctx) => {
    const probe = await execa(setpriv[0]!, [...setpriv.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(join(root, 'dist', 'src', 'cli', 'main.js'))})`], {
      reject: false,
    });
    if (probe.exitCode !== 0) ctx.skip('the package is not readable by nobody here');
    const r = await run(['check'], {}, setpriv);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^Not running as root: .*CAP_CHECKPOINT_RESTORE.* missing\.$/m);
    expect(r.stderr).toMatch(/^clone3-set-tid\s+missing\s+.*EPERM.*needs CAP_CHECKPOINT_RESTORE/m);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(/^criu-ts cannot work here: missing .*clone3-set-tid.* \(run it as root\)\.$/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});
