// Probes for reading, tracking and filling a child's memory from outside it:
// process_vm_readv, PAGEMAP_SCAN, userfaultfd write-protect tracking, lazy fill and events.
import { closeSync } from 'node:fs';
import { native } from '../kernel/native.js';
import { scanPid, type PageRange } from '../kernel/pagemap.js';
import { readRemote, writeRemote } from '../kernel/remote.js';
import { PAGE_IS, PAGE_SIZE, PM_SCAN, UFFD } from '../kernel/syscalls.js';
import { takeUffdFrom } from '../kernel/uffd.js';
import { ProbeMismatch, withStub, type Probe, type Stub } from './probe.js';

/** A page of recognisable bytes: a probe that reads back zeros or another page notices. */
function pattern(seed: number): Buffer {
  const b = Buffer.alloc(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i += 4) b.writeUInt32LE((seed * 0x9e3779b1 + i) >>> 0, i);
  return b;
}

function describeRanges(rs: PageRange[], base: number): string {
  return rs.length ? rs.map((r) => `pages ${(r.start - base) / PAGE_SIZE}-${(r.end - base) / PAGE_SIZE - 1}`).join(', ') : 'nothing';
}

/** Exactly the pages `pages` (indices from base), as one range each. */
function expectPages(what: string, got: PageRange[], base: number, pages: number[]): void {
  const ok = got.length === pages.length && pages.every((p, i) => got[i]!.start === base + p * PAGE_SIZE && got[i]!.end === base + (p + 1) * PAGE_SIZE);
  if (!ok) throw new ProbeMismatch(`${what}: got ${describeRanges(got, base)}, expected ${pages.map((p) => `page ${p}`).join(', ')}`);
}

export const processVmProbe: Probe = {
  name: 'process-vm',
  title: 'process_vm_writev + process_vm_readv of a child, several iovecs per call',
  required: true,
  affects: 'dump, pre-dump, restore',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) =>
      remote.withScratch(2 * PAGE_SIZE, (addr) => {
        const data = Buffer.concat([pattern(1), pattern(2)]);
        writeRemote(pid, addr, data);
        // Read the two pages back swapped, through two iovecs in one call.
        const back = Buffer.alloc(2 * PAGE_SIZE);
        const n = native.processVmReadv(pid, back, 0, [addr + PAGE_SIZE, PAGE_SIZE, addr, PAGE_SIZE]);
        if (n !== back.length || !back.subarray(0, PAGE_SIZE).equals(pattern(2)) || !back.subarray(PAGE_SIZE).equals(pattern(1))) {
          throw new ProbeMismatch(`process_vm_readv read back ${n} bytes that differ from what was written`);
        }
        return 'wrote and read back 2 pages of a stub';
      }),
    ),
};

export const pagemapScanProbe: Probe = {
  name: 'pagemap-scan',
  title: 'PAGEMAP_SCAN on /proc/PID/pagemap finds exactly the present pages',
  required: true,
  affects: 'dump, pre-dump',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) =>
      remote.withScratch(4 * PAGE_SIZE, (addr) => {
        writeRemote(pid, addr, pattern(1));
        writeRemote(pid, addr + 2 * PAGE_SIZE, pattern(2));
        const present = scanPid(pid, { start: addr, end: addr + 4 * PAGE_SIZE, categoryMask: PAGE_IS.PRESENT, returnMask: PAGE_IS.PRESENT });
        expectPages('PAGEMAP_SCAN(PAGE_IS_PRESENT)', present, addr, [0, 2]);
        return 'found the 2 written pages of 4';
      }),
    ),
};

/** A userfaultfd made inside the stub and taken out: what the dump and lazy server hold. */
function withUffd<T>(stub: Stub, fn: (fd: number, userModeOnly: boolean) => T): T {
  const { fd, userModeOnly } = takeUffdFrom(stub.remote, stub.pid);
  try {
    return fn(fd, userModeOnly);
  } finally {
    closeSync(fd);
  }
}

function requireFeatures(got: bigint, want: bigint, names: string): void {
  if ((got & want) !== want) throw new ProbeMismatch(`UFFDIO_API did not confirm ${names} (features 0x${got.toString(16)})`);
}

const WP_FEATURES = UFFD.FEATURE_WP_ASYNC | UFFD.FEATURE_WP_UNPOPULATED;
const SCAN_WRITTEN = {
  flags: PM_SCAN.WP_MATCHING | PM_SCAN.CHECK_WPASYNC,
  categoryMask: PAGE_IS.WRITTEN,
  returnMask: PAGE_IS.WRITTEN,
};

export const uffdWpAsyncProbe: Probe = {
  name: 'uffd-wp-async',
  title: 'userfaultfd WP_ASYNC + WP_UNPOPULATED from outside a child, written pages found by PAGEMAP_SCAN',
  required: false,
  affects: 'pre-dump and dump --track-mem (write tracking)',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, (stub) =>
      stub.remote.withScratch(4 * PAGE_SIZE, (addr) =>
        withUffd(stub, (fd, userModeOnly) => {
          const len = 4 * PAGE_SIZE;
          requireFeatures(native.uffdApi(fd, WP_FEATURES).features, WP_FEATURES, 'WP_ASYNC and WP_UNPOPULATED');
          native.uffdRegister(fd, addr, len, UFFD.REGISTER_MODE_WP);
          // The first scan arms the range (it reports it whole); the second must report
          // exactly the page written in between, and re-protect it.
          scanPid(stub.pid, { start: addr, end: addr + len, ...SCAN_WRITTEN });
          writeRemote(stub.pid, addr + PAGE_SIZE, pattern(3));
          expectPages('PAGEMAP_SCAN(PAGE_IS_WRITTEN) after one write', scanPid(stub.pid, { start: addr, end: addr + len, ...SCAN_WRITTEN }), addr, [1]);
          expectPages('PAGEMAP_SCAN(PAGE_IS_WRITTEN) with no new write', scanPid(stub.pid, { start: addr, end: addr + len, ...SCAN_WRITTEN }), addr, []);
          return `tracked one write to a stub${userModeOnly ? ' (uffd in user-mode-only mode)' : ''}`;
        }),
      ),
    ),
};

export const uffdMissingProbe: Probe = {
  name: 'uffd-missing',
  title: 'userfaultfd MODE_MISSING from outside a child, filled with UFFDIO_COPY and UFFDIO_ZEROPAGE',
  required: false,
  affects: 'restore --lazy',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, (stub) =>
      stub.remote.withScratch(2 * PAGE_SIZE, (addr) =>
        withUffd(stub, (fd, userModeOnly) => {
          native.uffdApi(fd, 0n);
          native.uffdRegister(fd, addr, 2 * PAGE_SIZE, UFFD.REGISTER_MODE_MISSING);
          const data = pattern(4);
          native.uffdCopy(fd, addr, data, 0, PAGE_SIZE, 0n);
          native.uffdZeropage(fd, addr + PAGE_SIZE, PAGE_SIZE, 0n);
          // Read only after both pages are in: reading a missing page would wait on us.
          const back = readRemote(stub.pid, addr, 2 * PAGE_SIZE);
          if (!back.subarray(0, PAGE_SIZE).equals(data)) throw new ProbeMismatch('the UFFDIO_COPY page reads back different bytes');
          if (back.subarray(PAGE_SIZE).some((b) => b !== 0)) throw new ProbeMismatch('the UFFDIO_ZEROPAGE page is not zero');
          return `filled a copied and a zero page into a stub${userModeOnly ? ' (uffd in user-mode-only mode)' : ''}`;
        }),
      ),
    ),
};

const EVENT_FEATURES = UFFD.FEATURE_EVENT_FORK | UFFD.FEATURE_EVENT_REMAP | UFFD.FEATURE_EVENT_REMOVE | UFFD.FEATURE_EVENT_UNMAP;

export const uffdEventsProbe: Probe = {
  name: 'uffd-events',
  title: 'userfaultfd non-cooperative events (EVENT_FORK, REMAP, REMOVE, UNMAP) from outside a child',
  required: false,
  affects: 'restore --lazy of processes that fork, mremap, madvise or munmap while pages are missing',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, (stub) =>
      withUffd(stub, (fd) => {
        requireFeatures(native.uffdApi(fd, EVENT_FEATURES).features, EVENT_FEATURES, 'EVENT_FORK, EVENT_REMAP, EVENT_REMOVE and EVENT_UNMAP');
        return 'UFFDIO_API accepted all four events';
      }),
    ),
};
