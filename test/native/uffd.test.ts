// userfaultfd and every uffd ioctl. The uffd is made inside a stopped stub by an injected
// syscall and taken out with pidfd_getfd (takeUffdFrom), so the ioctls act on the stub's mm;
// the test checks their effect through process_vm_readv and PAGEMAP_SCAN.
import { closeSync, openSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { openPagemap } from '../../src/kernel/pagemap.js';
import { Remote } from '../../src/kernel/remote.js';
import { MAP, PAGE_IS, PROT, UFFD } from '../../src/kernel/syscalls.js';
import { copyAll, takeUffdFrom, zeroAll } from '../../src/kernel/uffd.js';
import { PAGE, Procs, errCode } from './util.js';

const procs = new Procs();
const fds: number[] = [];
afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await procs.cleanup();
});
const keep = (fd: number) => (fds.push(fd), fd);

// Bits of uffdio_api.ioctls / uffdio_register.ioctls: 1 << _UFFDIO_*.
const IOC = { REGISTER: 0n, UNREGISTER: 1n, WAKE: 2n, COPY: 3n, ZEROPAGE: 4n, WRITEPROTECT: 6n, API: 0x3fn };
const has = (mask: bigint, bit: bigint) => ((mask >> bit) & 1n) === 1n;

function stubWithRegion(pages: number): { pid: number; remote: Remote; region: number } {
  const pid = procs.stub();
  const remote = Remote.forThread(pid);
  const region = remote.mmap(0, pages * PAGE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  return { pid, remote, region };
}

function read(pid: number, addr: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  expect(native.processVmReadv(pid, b, 0, [addr, len])).toBe(len);
  return b;
}

function pageData(seed: number, pages = 1): Buffer {
  const b = Buffer.alloc(pages * PAGE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + seed * 17 + (i >> 12)) & 0xff;
  return b;
}

describe('userfaultfd', () => {
  it('in this process: API once (EINVAL twice), flags and features checked', () => {
    const fd = keep(native.userfaultfd());
    const api = native.uffdApi(fd, 0n);
    for (const b of [IOC.API, IOC.REGISTER, IOC.UNREGISTER]) expect(has(api.ioctls, b)).toBe(true);
    // The kernel offers the features this project relies on.
    expect(api.features & UFFD.FEATURE_WP_ASYNC).toBe(UFFD.FEATURE_WP_ASYNC);
    expect(api.features & UFFD.FEATURE_WP_UNPOPULATED).toBe(UFFD.FEATURE_WP_UNPOPULATED);
    expect(api.features & UFFD.FEATURE_EVENT_REMOVE).toBe(UFFD.FEATURE_EVENT_REMOVE);
    expect(errCode(() => native.uffdApi(fd, 0n))).toBe('EINVAL');

    const fresh = keep(native.userfaultfd(undefined));
    expect(errCode(() => native.uffdApi(fresh, 1n << 62n))).toBe('EINVAL');
    expect(errCode(() => native.userfaultfd(0x1234))).toBe('EINVAL');
    const devnull = keep(openSync('/dev/null', 'r'));
    expect(errCode(() => native.uffdApi(devnull, 0n))).toBe('ENOTTY');
    expect(errCode(() => native.uffdApi(99_999, 0n))).toBe('EBADF');
  });

  it('REGISTER: needs API first; EINVAL unaligned or unmapped; EBUSY under another uffd', () => {
    const { pid, remote, region } = stubWithRegion(16);
    const { fd } = takeUffdFrom(remote, pid);
    keep(fd);
    expect(errCode(() => native.uffdRegister(fd, region, 8 * PAGE, UFFD.REGISTER_MODE_MISSING))).toBe('EINVAL');
    native.uffdApi(fd, 0n);
    const ioctls = native.uffdRegister(fd, region, 8 * PAGE, UFFD.REGISTER_MODE_MISSING | UFFD.REGISTER_MODE_WP);
    for (const b of [IOC.WAKE, IOC.COPY, IOC.ZEROPAGE, IOC.WRITEPROTECT]) expect(has(ioctls, b)).toBe(true);

    expect(errCode(() => native.uffdRegister(fd, region + 100, PAGE, UFFD.REGISTER_MODE_MISSING))).toBe('EINVAL');
    expect(errCode(() => native.uffdRegister(fd, 0x10000, PAGE, UFFD.REGISTER_MODE_MISSING))).toBe('EINVAL');
    expect(errCode(() => native.uffdRegister(fd, region, PAGE, 0n))).toBe('EINVAL');
    const other = keep(takeUffdFrom(remote, pid).fd);
    native.uffdApi(other, 0n);
    expect(errCode(() => native.uffdRegister(other, region, PAGE, UFFD.REGISTER_MODE_MISSING))).toBe('EBUSY');
    // The rest of the region is free for it.
    native.uffdRegister(other, region + 8 * PAGE, 8 * PAGE, UFFD.REGISTER_MODE_MISSING);
  });

  it('COPY and ZEROPAGE fill missing pages; EEXIST, EAGAIN with a partial count; copyAll/zeroAll skip', () => {
    const { pid, remote, region } = stubWithRegion(16);
    const fd = keep(takeUffdFrom(remote, pid).fd);
    native.uffdApi(fd, 0n);
    native.uffdRegister(fd, region, 8 * PAGE, UFFD.REGISTER_MODE_MISSING);
    const at = (p: number) => region + p * PAGE;

    const p0 = pageData(0);
    expect(native.uffdCopy(fd, at(0), p0, 0, PAGE, 0n)).toBe(PAGE);
    expect(read(pid, at(0), PAGE)).toEqual(p0);
    try {
      native.uffdCopy(fd, at(0), pageData(9), 0, PAGE, 0n);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'EEXIST', copied: 0 });
    }
    expect(read(pid, at(0), PAGE)).toEqual(p0);

    // Source offset: pages 1-3 from the second..fourth page of a bigger buffer.
    const src = pageData(1, 4);
    expect(native.uffdCopy(fd, at(1), src, PAGE, 3 * PAGE, 0n)).toBe(3 * PAGE);
    expect(read(pid, at(1), 3 * PAGE)).toEqual(src.subarray(PAGE));

    expect(native.uffdZeropage(fd, at(5), PAGE, 0n)).toBe(PAGE);
    // Pages 4-6: page 4 is filled, page 5 exists, so the call stops with EAGAIN after one page.
    try {
      native.uffdCopy(fd, at(4), pageData(4, 3), 0, 3 * PAGE, 0n);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'EAGAIN', copied: PAGE });
    }
    expect(read(pid, at(4), PAGE)).toEqual(pageData(4, 3).subarray(0, PAGE));
    expect(errCode(() => native.uffdZeropage(fd, at(5), PAGE, 0n))).toBe('EEXIST');

    // The wrappers go on past existing pages: 4 and 5 exist, 6 is filled.
    const src46 = pageData(6, 3);
    expect(copyAll(fd, at(4), src46, 0, 3 * PAGE)).toEqual({ copied: PAGE, skipped: 2 * PAGE });
    expect(read(pid, at(6), PAGE)).toEqual(src46.subarray(2 * PAGE));
    expect(zeroAll(fd, region, 8 * PAGE)).toEqual({ copied: PAGE, skipped: 7 * PAGE });
    expect(read(pid, at(5), PAGE)).toEqual(Buffer.alloc(PAGE));
    expect(read(pid, at(7), PAGE)).toEqual(Buffer.alloc(PAGE));

    // Errors: source too short (ENOBUFS, ours), unaligned (EINVAL), unregistered (ENOENT).
    expect(errCode(() => native.uffdCopy(fd, at(7), Buffer.alloc(100), 0, PAGE, 0n))).toBe('ENOBUFS');
    expect(errCode(() => native.uffdCopy(fd, at(7), Buffer.alloc(PAGE), 1, PAGE, 0n))).toBe('ENOBUFS');
    expect(errCode(() => native.uffdCopy(fd, at(7) + 8, Buffer.alloc(PAGE), 0, PAGE, 0n))).toBe('EINVAL');
    expect(errCode(() => native.uffdCopy(fd, at(12), Buffer.alloc(PAGE), 0, PAGE, 0n))).toBe('ENOENT');
    expect(errCode(() => native.uffdZeropage(fd, at(12), PAGE, 0n))).toBe('ENOENT');
    expect(errCode(() => native.uffdZeropage(fd, at(3) + 1, PAGE, 0n))).toBe('EINVAL');
  });

  it('WRITEPROTECT sets and clears the uffd-wp bit that PAGEMAP_SCAN reports', () => {
    const { pid, remote, region } = stubWithRegion(8);
    const fd = keep(takeUffdFrom(remote, pid).fd);
    native.uffdApi(fd, 0n);
    native.uffdRegister(fd, region, 4 * PAGE, UFFD.REGISTER_MODE_MISSING | UFFD.REGISTER_MODE_WP);
    // Page 0 present and unprotected, page 1 filled already protected (COPY_MODE_WP).
    native.uffdCopy(fd, region, pageData(0), 0, PAGE, 0n);
    native.uffdCopy(fd, region + PAGE, pageData(1), 0, PAGE, UFFD.COPY_MODE_WP);
    const pm = keep(openPagemap(pid));
    const written = () => {
      const vec = Buffer.alloc(24 * 4);
      const { count } = native.pagemapScan(pm, { start: region, end: region + 2 * PAGE, categoryMask: PAGE_IS.WRITTEN, returnMask: PAGE_IS.WRITTEN }, vec);
      return Array.from({ length: count }, (_, i) => [Number(vec.readBigUInt64LE(i * 24)) - region, Number(vec.readBigUInt64LE(i * 24 + 8)) - region]);
    };
    expect(written()).toEqual([[0, PAGE]]);
    native.uffdWriteprotect(fd, region, PAGE, UFFD.WRITEPROTECT_MODE_WP);
    expect(written()).toEqual([]);
    native.uffdWriteprotect(fd, region, 2 * PAGE, 0n);
    expect(written()).toEqual([[0, 2 * PAGE]]);

    expect(errCode(() => native.uffdWriteprotect(fd, region + 6 * PAGE, PAGE, UFFD.WRITEPROTECT_MODE_WP))).toBe('ENOENT');
    expect(errCode(() => native.uffdWriteprotect(fd, region + 1, PAGE, UFFD.WRITEPROTECT_MODE_WP))).toBe('EINVAL');
  });

  it('WAKE, READ with nothing pending, UNREGISTER', () => {
    const { pid, remote, region } = stubWithRegion(8);
    const fd = keep(takeUffdFrom(remote, pid).fd);
    native.uffdApi(fd, 0n);
    native.uffdRegister(fd, region, 4 * PAGE, UFFD.REGISTER_MODE_MISSING);
    native.uffdWake(fd, region, 4 * PAGE);
    expect(errCode(() => native.uffdWake(fd, region + 8, PAGE))).toBe('EINVAL');
    expect(errCode(() => native.uffdWake(fd, region, 0))).toBe('EINVAL');

    // Non-blocking (takeUffdFrom's O_NONBLOCK): nothing waiting reads as 0 messages.
    expect(native.poll([fd], [1], 0)).toEqual([0]);
    expect(native.uffdRead(fd, Buffer.alloc(4 * 32))).toBe(0);
    expect(errCode(() => native.uffdRead(fd, Buffer.alloc(16)))).toBe('EINVAL');
    expect(errCode(() => native.uffdRead(99_999, Buffer.alloc(32)))).toBe('EBADF');

    expect(errCode(() => native.uffdUnregister(fd, region + 1, PAGE))).toBe('EINVAL');
    native.uffdUnregister(fd, region, 4 * PAGE);
    // No longer registered: fills are refused.
    expect(errCode(() => native.uffdCopy(fd, region, pageData(0), 0, PAGE, 0n))).toBe('ENOENT');
  });
});
