// errnoName, strerror, poll.
import { closeSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { SIG } from '../../src/kernel/syscalls.js';
import { Procs, errCode, wait } from './util.js';

const procs = new Procs();
const fds: number[] = [];
afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await procs.cleanup();
});

const POLLIN = 1;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;

describe('errnoName / strerror', () => {
  it('name errno values as the kernel headers do', () => {
    expect(native.errnoName(1)).toBe('EPERM');
    expect(native.errnoName(3)).toBe('ESRCH');
    expect(native.errnoName(11)).toBe('EAGAIN');
    expect(native.errnoName(17)).toBe('EEXIST');
    expect(native.errnoName(95)).toBe('EOPNOTSUPP');
    expect(native.errnoName(99_999)).toBe('EUNKNOWN');
    expect(native.strerror(2)).toBe('No such file or directory');
    expect(native.strerror(3)).toBe('No such process');
  });

  it('bad arguments are EINVAL', () => {
    expect(errCode(() => native.errnoName('x' as unknown as number))).toBe('EINVAL');
    expect(errCode(() => native.strerror({} as unknown as number))).toBe('EINVAL');
  });
});

describe('poll', () => {
  it('reports per-fd events: nothing, POLLIN (+ POLLHUP once reaped) on exit, POLLNVAL for a closed fd', () => {
    const a = procs.stub();
    const b = procs.stub();
    const fa = native.pidfdOpen(a);
    const fb = native.pidfdOpen(b);
    fds.push(fa, fb);
    expect(native.poll([fa, fb], [POLLIN, POLLIN], 0)).toEqual([0, 0]);
    native.kill(b, SIG.KILL);
    expect(wait(b)).toMatchObject({ kind: 'signaled' });
    expect(native.poll([fa, fb, 99_999, -1], [POLLIN, POLLIN, POLLIN, POLLIN], 10_000)).toEqual([0, POLLIN | POLLHUP, POLLNVAL, 0]);
    expect(native.poll([], [], 0)).toEqual([]);
  });

  it('fails: EINVAL for mismatched arrays or more fds than RLIMIT_NOFILE', () => {
    expect(errCode(() => native.poll([0, 1], [POLLIN], 0))).toBe('EINVAL');
    expect(errCode(() => native.poll(0 as unknown as number[], [], 0))).toBe('EINVAL');
    const soft = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1]);
    const n = soft + 1;
    expect(errCode(() => native.poll(new Array(n).fill(-1), new Array(n).fill(POLLIN), 0))).toBe('EINVAL');
  });
});
