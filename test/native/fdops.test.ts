// kcmp, pipe2, tee, fcntl.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { O } from '../../src/kernel/syscalls.js';
import { errCode } from './util.js';

const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
});
const keep = <T extends number[]>(...f: T): T => (fds.push(...f), f);

const KCMP_FILE = 0;
const F_GETFD = 1;
const F_GETFL = 3;
const F_GETPIPE_SZ = 1032;
const SPLICE_F_NONBLOCK = 2;

describe('kcmp', () => {
  it('tells a dup (one open file description) from a second open of the same file', () => {
    const [a] = keep(openSync('/dev/null', 'r'));
    const [b] = keep(openSync('/dev/null', 'r'));
    const dup = keep(native.fcntl(a, 0 /* F_DUPFD */, 0))[0];
    expect(native.kcmp(process.pid, process.pid, KCMP_FILE, a, dup)).toBe(0);
    expect(native.kcmp(process.pid, process.pid, KCMP_FILE, a, b)).not.toBe(0);
  });

  it('a closed fd is EBADF, a missing process ESRCH', () => {
    expect(errCode(() => native.kcmp(process.pid, process.pid, KCMP_FILE, 0, 987654))).toBe('EBADF');
    expect(errCode(() => native.kcmp(process.pid, 0x3ffffff0, KCMP_FILE, 0, 0))).toBe('ESRCH');
  });
});

describe('pipe2 / tee / fcntl', () => {
  it('tee copies a pipe\'s data into another pipe and leaves it there', () => {
    const [r, w] = keep(...native.pipe2(O.CLOEXEC));
    const [r2, w2] = keep(...native.pipe2(O.CLOEXEC | O.NONBLOCK));
    expect(native.fcntl(r, F_GETFD) & 1).toBe(1);
    expect(native.fcntl(r2, F_GETFL) & O.NONBLOCK).toBe(O.NONBLOCK);
    expect(native.fcntl(r, F_GETPIPE_SZ)).toBeGreaterThanOrEqual(4096);
    writeSync(w, 'data in flight');
    expect(native.tee(r, w2, 65536, SPLICE_F_NONBLOCK)).toBe(14);
    const a = Buffer.alloc(64);
    const b = Buffer.alloc(64);
    expect(a.toString('utf8', 0, readSync(r2, a))).toBe('data in flight');
    expect(b.toString('utf8', 0, readSync(r, b))).toBe('data in flight');
  });

  it('tee on an empty non-blocking pipe is EAGAIN; bad flags and fds are refused', () => {
    const [r] = keep(...native.pipe2(O.CLOEXEC | O.NONBLOCK));
    const [, w2] = keep(...native.pipe2(O.CLOEXEC));
    expect(errCode(() => native.tee(r, w2, 4096, SPLICE_F_NONBLOCK))).toBe('EAGAIN');
    expect(errCode(() => native.pipe2(0x7fff0000))).toBe('EINVAL');
    expect(errCode(() => native.fcntl(987654, F_GETFD))).toBe('EBADF');
    expect(errCode(() => native.tee(987654, w2, 1, 0))).toBe('EBADF');
  });
});
