// pidfd_open, pidfd_getfd, pidfd_send_signal; poll on a pidfd.
import { closeSync, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { SIG } from '../../src/kernel/syscalls.js';
import { Procs, deadPid, errCode, wait } from './util.js';

const procs = new Procs();
const fds: number[] = [];
afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await procs.cleanup();
});
const keep = (fd: number) => (fds.push(fd), fd);

const POLLIN = 1;

describe('pidfd', () => {
  it('open, poll until exit, send a signal', () => {
    const pid = procs.stub();
    native.ptraceDetach(pid);
    const pidfd = keep(native.pidfdOpen(pid));
    expect(pidfd).toBeGreaterThan(2);
    // Readable only once the process has exited.
    expect(native.poll([pidfd], [POLLIN], 0)).toEqual([0]);
    native.pidfdSendSignal(pidfd, 0);
    native.pidfdSendSignal(pidfd, SIG.TERM);
    expect(native.poll([pidfd], [POLLIN], 10_000)).toEqual([POLLIN]);
    expect(wait(pid)).toMatchObject({ kind: 'signaled', signal: SIG.TERM });
    // The pidfd outlives the process: signalling it now is ESRCH.
    expect(errCode(() => native.pidfdSendSignal(pidfd, 0))).toBe('ESRCH');
  });

  it('open fails: ESRCH for a dead pid, EINVAL for bad flags', () => {
    expect(errCode(() => native.pidfdOpen(deadPid()))).toBe('ESRCH');
    const pid = procs.stub();
    expect(errCode(() => native.pidfdOpen(pid, 0x1234))).toBe('EINVAL');
  });

  it('send_signal fails: EBADF for a closed fd or one that is not a pidfd, EINVAL for a bad signal', () => {
    const pid = procs.stub();
    const pidfd = keep(native.pidfdOpen(pid));
    expect(errCode(() => native.pidfdSendSignal(pidfd, 1000))).toBe('EINVAL');
    const devnull = keep(openSync('/dev/null', 'r'));
    expect(errCode(() => native.pidfdSendSignal(devnull, 0))).toBe('EBADF');
    expect(errCode(() => native.pidfdSendSignal(99_999, 0))).toBe('EBADF');
  });

  it("getfd takes a target's fd: the same open file", async () => {
    const m = await procs.memtool();
    const pidfd = keep(native.pidfdOpen(m.pid));
    const out = keep(native.pidfdGetfd(pidfd, 1));
    const theirs = statSync(`/proc/${m.pid}/fd/1`);
    const ours = fstatSync(out);
    expect([ours.dev, ours.ino]).toEqual([theirs.dev, theirs.ino]);
    // Writing to it lands in the target's stdout, which the test reads.
    writeSync(out, 'hello-through-pidfd-getfd\n');
    expect(await m.t.waitFor('hello-through-pidfd')).toBe('hello-through-pidfd-getfd');

    expect(errCode(() => native.pidfdGetfd(pidfd, 999))).toBe('EBADF');
    expect(errCode(() => native.pidfdGetfd(pidfd, 1, 1))).toBe('EINVAL');
    expect(errCode(() => native.pidfdGetfd(99_999, 1))).toBe('EBADF');
  });
});
