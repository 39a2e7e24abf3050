// The probe table in-process: every probe ok here, and no probe leaves a child behind,
// whether it succeeds or fails.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { check, PROBE_NAMES, PROBES } from '../../src/check/index.js';
import { describeFailure, runProbe, withStub } from '../../src/check/probe.js';
import { stubPath } from '../../src/kernel/native.js';
import { silentLogger } from '../../src/log.js';

/** PIDs of this process's children, over all its threads. */
function children(): number[] {
  return readdirSync('/proc/self/task').flatMap((t) =>
    readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
}

const ctx = { log: silentLogger, stubPath };

describe('probes', () => {
  it('have unique names and the required ones dump and restore need', () => {
    expect(new Set(PROBE_NAMES).size).toBe(PROBES.length);
    expect(PROBES.filter((p) => p.required).map((p) => p.name)).toEqual([
      'ptrace',
      'pidfd-getfd',
      'process-vm',
      'pagemap-scan',
      'clone3-set-tid',
      'prctl-mm-map',
      'zstd',
    ]);
  });

  it('all pass on this machine, run in-process, and leave no child behind', async () => {
    const before = children();
    const report = await check();
    expect(report.probes.filter((p) => p.status !== 'ok')).toEqual([]);
    expect(report.ok).toBe(true);
    expect(children()).toEqual(before);
  });

  it('kill and reap the stub when a probe fails half-way', async () => {
    let pid = 0;
    const result = await runProbe(
      {
        name: 'broken',
        title: 'fails after making its stub',
        required: false,
        affects: 'nothing',
        needs: [],
        run: (c) =>
          withStub(c, (stub) => {
            pid = stub.pid;
            throw Object.assign(new Error('injected failure'), { code: 'EPERM' });
          }),
      },
      ctx,
    );
    expect(pid).toBeGreaterThan(0);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(result).toMatchObject({ name: 'broken', status: 'missing', reason: 'injected failure' });
  });

  it('say which capability an EPERM points at', () => {
    const e = Object.assign(new Error('clone3(set_tid)(5): Operation not permitted (EPERM)'), { code: 'EPERM', errno: 1, syscall: 'clone3' });
    expect(describeFailure(e, ['CHECKPOINT_RESTORE', 'SYS_ADMIN'])).toBe(
      'clone3(set_tid)(5): Operation not permitted (EPERM); needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN',
    );
    expect(describeFailure(Object.assign(new Error('x (EINVAL)'), { code: 'EINVAL' }), ['SYS_PTRACE'])).toBe('x (EINVAL)');
  });

  it('can be forced missing (the test-only fault switch)', async () => {
    const report = await check({ feature: 'zstd', forceMissing: new Set(['zstd']) });
    expect(report).toMatchObject({ ok: false, requiredMissing: ['zstd'] });
    expect(report.probes[0]!.reason).toMatch(/forced/);
  });
});
