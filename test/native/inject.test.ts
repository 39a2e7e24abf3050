import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { seizeAndStop, detach } from '../../src/kernel/ptrace.js';
import { Remote } from '../../src/kernel/remote.js';
import { getRegs } from './util.js';
import { SYS } from '../../src/kernel/syscalls.js';
import { fixture } from '../helpers/fixtures.js';
import { startTarget, type Target } from '../helpers/target.js';

let t: Target | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('syscall injection', () => {
  it('runs getpid in a child blocked in read() and leaves the read to restart', async () => {
    t = await startTarget(fixture('reader'));
    await t.waitFor('ready');
    await new Promise((r) => setTimeout(r, 50)); // let it enter read()
    seizeAndStop(t.pid, 0);
    const before = getRegs(t.pid);
    const remote = Remote.forThread(t.pid);
    expect(remote.call(SYS.getpid, 'getpid')).toBe(t.pid);
    expect(remote.call(SYS.gettid, 'gettid')).toBe(t.pid);
    const after = getRegs(t.pid);
    expect(after).toEqual(before);
    detach(t.pid);
    t.write('hello');
    expect(await t.waitFor('got:')).toBe('got:hello');
  });

  it('returns -errno as a coded error', async () => {
    t = await startTarget(fixture('reader'));
    await t.waitFor('ready');
    seizeAndStop(t.pid, 0);
    const remote = Remote.forThread(t.pid);
    expect(() => remote.call(SYS.close, 'close', 9999)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    detach(t.pid);
  });

  it('fails with ESRCH on a thread that is not traced', () => {
    expect(() => native.injectSyscall(1, 0, SYS.getpid)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });
});
