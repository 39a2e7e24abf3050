// Write tracking from outside the target: a uffd injected into it and taken out, WP_ASYNC +
// WP_UNPOPULATED, REGISTER(MODE_WP) over its buffer, then PAGEMAP_SCAN with WP_MATCHING gets
// (and re-protects) exactly the pages the running target wrote.
import { closeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { openPagemap, scanFd, type PageRange } from '../../src/kernel/pagemap.js';
import { detach, seizeAndStop } from '../../src/kernel/ptrace.js';
import { Remote } from '../../src/kernel/remote.js';
import { PAGE_IS, PM_SCAN, PTRACE_O, UFFD } from '../../src/kernel/syscalls.js';
import { takeUffdFrom } from '../../src/kernel/uffd.js';
import { PAGE, Procs, errCode } from './util.js';

const procs = new Procs();
const fds: number[] = [];
afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await procs.cleanup();
});
const keep = (fd: number) => (fds.push(fd), fd);

const WRITTEN = { flags: PM_SCAN.WP_MATCHING | PM_SCAN.CHECK_WPASYNC, categoryMask: PAGE_IS.WRITTEN, returnMask: PAGE_IS.WRITTEN };

describe('write tracking (uffd-wp async + PAGEMAP_SCAN)', () => {
  it('reports exactly the pages written since the last scan', async () => {
    const m = await procs.memtool();
    const end = m.buf + m.bufPages * PAGE;
    const pages = (rs: PageRange[]) => rs.flatMap((r) => Array.from({ length: (r.end - r.start) / PAGE }, (_, i) => (r.start - m.buf) / PAGE + i));

    seizeAndStop(m.pid, PTRACE_O.EXITKILL);
    const remote = Remote.forThread(m.pid);
    const { fd, userModeOnly } = takeUffdFrom(remote, m.pid);
    keep(fd);
    expect(userModeOnly).toBe(false);
    // takeUffdFrom closed the target's copy: ours is the only one.
    const api = native.uffdApi(fd, UFFD.FEATURE_WP_ASYNC | UFFD.FEATURE_WP_UNPOPULATED);
    expect(api.features & (UFFD.FEATURE_WP_ASYNC | UFFD.FEATURE_WP_UNPOPULATED)).toBe(UFFD.FEATURE_WP_ASYNC | UFFD.FEATURE_WP_UNPOPULATED);
    native.uffdRegister(fd, m.buf, m.bufPages * PAGE, UFFD.REGISTER_MODE_WP);

    const pm = keep(openPagemap(m.pid));
    // First scan: every page counts as written (never protected); all get protected.
    expect(scanFd(pm, { start: m.buf, end, ...WRITTEN })).toEqual([{ start: m.buf, end, categories: PAGE_IS.WRITTEN }]);
    expect(scanFd(pm, { start: m.buf, end, ...WRITTEN })).toEqual([]);
    detach(m.pid);

    // The target runs and writes; the kernel resolves its faults itself (async), no messages.
    await m.cmd('w 3 17 200');
    expect(pages(scanFd(pm, { start: m.buf, end, ...WRITTEN }))).toEqual([3, 17, 200]);
    // The scan re-protected them: nothing new since.
    expect(scanFd(pm, { start: m.buf, end, ...WRITTEN })).toEqual([]);
    expect(native.uffdRead(fd, Buffer.alloc(32))).toBe(0);

    await m.cmd('w 17 0 255 18');
    // In small batches too, the loop gives each page once.
    expect(pages(scanFd(pm, { start: m.buf, end, ...WRITTEN, batch: 1 }))).toEqual([0, 17, 18, 255]);

    // A page dropped by madvise now reads as zero: it counts as written.
    expect(await m.cmd(`z ${(m.buf + 40 * PAGE).toString(16)} ${PAGE}`)).toBe('0');
    expect(pages(scanFd(pm, { start: m.buf, end, ...WRITTEN }))).toEqual([40]);

    // A VMA that was never registered: a checked scan refuses it.
    expect(errCode(() => scanFd(pm, { start: m.other, end: m.other + m.otherPages * PAGE, ...WRITTEN }))).toBe('EPERM');
    // Without CHECK_WPASYNC it is not refused, and it is no way to learn anything.
    const vec = Buffer.alloc(24 * 4);
    expect(native.pagemapScan(pm, { start: m.other, end: m.other + PAGE, ...WRITTEN, flags: PM_SCAN.WP_MATCHING }, vec).count).toBe(0);

    // Closing the last reference to the uffd ends the registration: checked scans fail.
    closeSync(fds.splice(fds.indexOf(fd), 1)[0]!);
    await m.cmd('w 5');
    expect(errCode(() => scanFd(pm, { start: m.buf, end, ...WRITTEN }))).toBe('EPERM');
  });
});
