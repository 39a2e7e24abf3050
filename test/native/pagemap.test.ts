// PAGEMAP_SCAN (native, one ioctl) and its loop in src/kernel/pagemap.ts, on the memtool
// fixture: a 256-page buffer, all present, where the test drops chosen pages.
import { closeSync, openSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { openPagemap, scanBuffer, scanFd, scanFdAsync } from '../../src/kernel/pagemap.js';
import { readMaps } from '../../src/kernel/procfs.js';
import { PAGE_IS, PM_SCAN } from '../../src/kernel/syscalls.js';
import { PAGE, Procs, errCode } from './util.js';

const procs = new Procs();
const fds: number[] = [];
afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await procs.cleanup();
});
const keep = (fd: number) => (fds.push(fd), fd);

const REGION = 24;
function regions(vec: Buffer, count: number, base = 0) {
  return Array.from({ length: count }, (_, i) => ({
    start: (Number(vec.readBigUInt64LE(i * REGION)) - base) / PAGE,
    end: (Number(vec.readBigUInt64LE(i * REGION + 8)) - base) / PAGE,
    categories: Number(vec.readBigUInt64LE(i * REGION + 16)),
  }));
}

describe('PAGEMAP_SCAN', () => {
  it('reports present pages as merged regions, honouring vec_len, max_pages and inversion', async () => {
    const m = await procs.memtool();
    const pm = keep(openPagemap(m.pid));
    const start = m.buf;
    const end = m.buf + m.bufPages * PAGE;
    const present = { start, end, categoryMask: PAGE_IS.PRESENT, returnMask: PAGE_IS.PRESENT };

    const vec = Buffer.alloc(16 * REGION);
    let r = native.pagemapScan(pm, present, vec);
    expect(regions(vec, r.count, m.buf)).toEqual([{ start: 0, end: 256, categories: PAGE_IS.PRESENT }]);
    expect(r.walkEnd).toBe(end);

    // Drop pages 10, 11 and 100: three present regions.
    expect(await m.cmd(`z ${(m.buf + 10 * PAGE).toString(16)} ${2 * PAGE}`)).toBe('0');
    expect(await m.cmd(`z ${(m.buf + 100 * PAGE).toString(16)} ${PAGE}`)).toBe('0');
    r = native.pagemapScan(pm, present, vec);
    expect(regions(vec, r.count, m.buf)).toEqual([
      { start: 0, end: 10, categories: PAGE_IS.PRESENT },
      { start: 12, end: 100, categories: PAGE_IS.PRESENT },
      { start: 101, end: 256, categories: PAGE_IS.PRESENT },
    ]);
    // Inverted: the missing pages.
    r = native.pagemapScan(pm, { ...present, categoryInverted: PAGE_IS.PRESENT }, vec);
    expect(regions(vec, r.count, m.buf)).toEqual([
      { start: 10, end: 12, categories: 0 },
      { start: 100, end: 101, categories: 0 },
    ]);

    // One region of room: the first, and a walk_end where the scan stopped.
    const one = Buffer.alloc(REGION);
    r = native.pagemapScan(pm, present, one);
    expect(r.count).toBe(1);
    expect(regions(one, 1, m.buf)).toEqual([{ start: 0, end: 10, categories: PAGE_IS.PRESENT }]);
    expect(r.walkEnd).toBeGreaterThanOrEqual(m.buf + 10 * PAGE);
    expect(r.walkEnd).toBeLessThan(end);
    // max_pages bounds the pages reported.
    r = native.pagemapScan(pm, { ...present, maxPages: 5 }, vec);
    expect(regions(vec, r.count, m.buf)).toEqual([{ start: 0, end: 5, categories: PAGE_IS.PRESENT }]);

    // The TS loop over one-region batches gives the same set as one big call.
    expect(scanFd(pm, { ...present, batch: 1 }).map((x) => [(x.start - m.buf) / PAGE, (x.end - m.buf) / PAGE])).toEqual([
      [0, 10],
      [12, 100],
      [101, 256],
    ]);
  });

  it('tells file pages from anonymous ones', async () => {
    const m = await procs.memtool();
    const pm = keep(openPagemap(m.pid));
    const text = readMaps(m.pid).find((x) => x.perms[2] === 'x' && x.name.endsWith('/memtool'))!;
    expect(text).toBeDefined();
    const vec = Buffer.alloc(64 * REGION);
    const fileMask = PAGE_IS.FILE | PAGE_IS.PRESENT;
    let r = native.pagemapScan(pm, { start: text.start, end: text.end, categoryMask: PAGE_IS.PRESENT, returnMask: fileMask }, vec);
    expect(r.count).toBeGreaterThan(0);
    for (const x of regions(vec, r.count)) expect(x.categories).toBe(fileMask);
    r = native.pagemapScan(pm, { start: m.buf, end: m.buf + PAGE, returnMask: fileMask }, vec);
    expect(regions(vec, r.count, m.buf)).toEqual([{ start: 0, end: 1, categories: PAGE_IS.PRESENT }]);
  });

  it('fails: EINVAL for bad alignment, flags or masks; EFAULT above the user range; ENOTTY/EBADF on other fds', async () => {
    const m = await procs.memtool();
    const pm = keep(openPagemap(m.pid));
    const vec = Buffer.alloc(4 * REGION);
    const ok = { start: m.buf, end: m.buf + PAGE, returnMask: PAGE_IS.PRESENT };
    expect(errCode(() => native.pagemapScan(pm, { ...ok, start: m.buf + 8 }, vec))).toBe('EINVAL');
    expect(errCode(() => native.pagemapScan(pm, { ...ok, flags: 1 << 5 }, vec))).toBe('EINVAL');
    expect(errCode(() => native.pagemapScan(pm, { ...ok, returnMask: 1 << 20 }, vec))).toBe('EINVAL');
    expect(errCode(() => native.pagemapScan(pm, { ...ok, end: 2 ** 48 }, vec))).toBe('EFAULT');
    expect(errCode(() => native.pagemapScan(pm, ok, 'x' as unknown as Buffer))).toBe('EINVAL');
    expect(errCode(() => native.pagemapScan(pm, 5 as unknown as typeof ok, vec))).toBe('EINVAL');
    const devnull = keep(openSync('/dev/null', 'r'));
    expect(errCode(() => native.pagemapScan(devnull, ok, vec))).toBe('ENOTTY');
    expect(errCode(() => native.pagemapScan(99_999, ok, vec))).toBe('EBADF');
    // Write-protect matching needs a uffd-wp async registration (test/native/write-tracking).
    expect(errCode(() => native.pagemapScan(pm, { ...ok, flags: PM_SCAN.WP_MATCHING | PM_SCAN.CHECK_WPASYNC }, vec))).toBe('EPERM');
  });

  it('pagemapScanAsync: the same answers from the libuv pool, and its failures as rejected errnos', async () => {
    const m = await procs.memtool();
    const pm = keep(openPagemap(m.pid));
    expect(await m.cmd(`z ${(m.buf + 7 * PAGE).toString(16)} ${3 * PAGE}`)).toBe('0');
    const present = { start: m.buf, end: m.buf + m.bufPages * PAGE, categoryMask: PAGE_IS.PRESENT, returnMask: PAGE_IS.PRESENT };
    expect(await scanFdAsync(pm, { ...present, batch: 1 })).toEqual(scanFd(pm, present));
    // A caller's buffer (its length sets the batch), reused scan after scan, gives the same.
    const reused = scanBuffer(2);
    expect(scanFd(pm, { ...present, vec: reused })).toEqual(scanFd(pm, present));
    expect(await scanFdAsync(pm, { ...present, vec: reused })).toEqual(scanFd(pm, present));
    expect(scanFd(pm, { ...present, start: m.buf + 8 * PAGE, vec: reused })).toEqual([{ start: m.buf + 10 * PAGE, end: m.buf + 256 * PAGE, categories: PAGE_IS.PRESENT }]);
    expect(scanFd(pm, present).map((r) => [(r.start - m.buf) / PAGE, (r.end - m.buf) / PAGE])).toEqual([
      [0, 7],
      [10, 256],
    ]);
    const vec = Buffer.alloc(4 * REGION);
    const err = await native.pagemapScanAsync(pm, { ...present, flags: PM_SCAN.WP_MATCHING | PM_SCAN.CHECK_WPASYNC }, vec).catch((e: NodeJS.ErrnoException) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EPERM');
    const bad = await native.pagemapScanAsync(99_999, present, vec).catch((e: NodeJS.ErrnoException) => e);
    expect((bad as NodeJS.ErrnoException).code).toBe('EBADF');
  });
});
