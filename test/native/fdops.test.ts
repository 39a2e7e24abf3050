// kcmp, pipe2, tee, fcntl, sync_file_range, readFullAsync.
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { O, SYNC_FILE_RANGE } from '../../src/kernel/syscalls.js';
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

describe('sync_file_range / readFullAsync', () => {
  it('sync_file_range starts writeback of a range and waits for it; a pipe is ESPIPE, a bad fd EBADF, bad flags EINVAL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'criu-ts-sfr-'));
    try {
      const [fd] = keep(openSync(join(dir, 'f'), 'w+'));
      writeSync(fd, Buffer.alloc(1 << 20, 7), 0, 1 << 20, 0);
      expect(native.syncFileRange(fd, 0, 1 << 20, SYNC_FILE_RANGE.WRITE)).toBeUndefined();
      native.syncFileRange(fd, 0, 1 << 20, SYNC_FILE_RANGE.WAIT_BEFORE | SYNC_FILE_RANGE.WRITE | SYNC_FILE_RANGE.WAIT_AFTER);
      // (How much of one file is still dirty is not visible from user space: the calls are
      // checked for being accepted, and their refusals below.)
      const [r] = keep(...native.pipe2(O.CLOEXEC));
      expect(errCode(() => native.syncFileRange(r, 0, 4096, SYNC_FILE_RANGE.WRITE))).toBe('ESPIPE');
      expect(errCode(() => native.syncFileRange(987654, 0, 4096, SYNC_FILE_RANGE.WRITE))).toBe('EBADF');
      expect(errCode(() => native.syncFileRange(fd, 0, 4096, 0x80))).toBe('EINVAL');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('readFullAsync reads a /proc file whole from the pool, stops when the buffer is full, and rejects with the errno', async () => {
    const [fd] = keep(openSync('/proc/self/smaps', 'r'));
    const buf = Buffer.alloc(4 << 20);
    const n = await native.readFullAsync(fd, buf);
    // smaps is generated a few VMAs per read(2): whole means every VMA, up to the last one's VmFlags.
    const text = buf.toString('utf8', 0, n);
    const maps = readFileSync('/proc/self/maps', 'utf8').trim().split('\n');
    expect(n).toBeGreaterThan(maps.length * 200);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^VmFlags:/);
    expect(text.split('\n').filter((l) => l.startsWith('VmFlags:')).length).toBeGreaterThanOrEqual(maps.length - 4); // our own maps move a little meanwhile

    const [fd2] = keep(openSync('/proc/self/smaps', 'r'));
    const small = Buffer.alloc(100);
    expect(await native.readFullAsync(fd2, small)).toBe(100);
    expect(small.toString('utf8')).toBe(text.slice(0, 100));

    const [r, w] = keep(...native.pipe2(O.CLOEXEC));
    writeSync(w, 'abc');
    closeSync(w);
    fds.splice(fds.indexOf(w), 1);
    expect(await native.readFullAsync(r, Buffer.alloc(16))).toBe(3); // stops at the end

    const [wo] = keep(openSync('/dev/null', 'w'));
    await expect(native.readFullAsync(wo, Buffer.alloc(16))).rejects.toMatchObject({ code: 'EBADF' });
  });
});
