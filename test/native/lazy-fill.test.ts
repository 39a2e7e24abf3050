// Lazy fill from outside the target: a region mapped in the stopped target by injection,
// registered MODE_MISSING with a uffd taken out of it; the target then runs and reads the
// region while the test serves each fault with UFFDIO_COPY / UFFDIO_ZEROPAGE.
import { closeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { detach, seizeAndStop } from '../../src/kernel/ptrace.js';
import { Remote } from '../../src/kernel/remote.js';
import { MAP, PROT, PTRACE_O, UFFD } from '../../src/kernel/syscalls.js';
import { copyAll, parseMsg, takeUffdFrom, zeroAll, type UffdMsg } from '../../src/kernel/uffd.js';
import { MemTool, PAGE, Procs, errCode, fnv1a } from './util.js';

const procs = new Procs();
const fds: number[] = [];
afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await procs.cleanup();
});
const keep = (fd: number) => (fds.push(fd), fd);

const POLLIN = 1;
const tick = () => new Promise<void>((r) => setImmediate(r));

/** Stops the target, maps `pages` fresh pages in it, registers them with a uffd taken out. */
function prepare(m: MemTool, pages: number, features: bigint): { fd: number; region: number } {
  seizeAndStop(m.pid, PTRACE_O.EXITKILL);
  const remote = Remote.forThread(m.pid);
  const region = remote.mmap(0, pages * PAGE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  const fd = keep(takeUffdFrom(remote, m.pid).fd);
  native.uffdApi(fd, features);
  native.uffdRegister(fd, region, pages * PAGE, UFFD.REGISTER_MODE_MISSING);
  detach(m.pid);
  return { fd, region };
}

/**
 * Serves the uffd until `done` resolves: poll, read the messages, hand each to `serve`.
 * The target blocks in its fault until served, so this runs on the event loop between polls
 * (the target's output arrives through it). The deadline only bounds a hang.
 */
async function serveUntil<T>(fd: number, done: Promise<T>, serve: (msg: UffdMsg) => void): Promise<T> {
  let result: { v: T } | undefined;
  let failure: unknown;
  done.then(
    (v) => (result = { v }),
    (e) => (failure = e ?? new Error('failed')),
  );
  const msgs = Buffer.alloc(16 * native.constants.uffdMsgSize);
  const deadline = Date.now() + 20_000;
  while (!result) {
    if (failure) throw failure;
    if (Date.now() > deadline) throw new Error('the target did not finish while being served');
    const [rev] = native.poll([fd], [POLLIN], 5);
    if (rev! & POLLIN) {
      const n = native.uffdRead(fd, msgs);
      for (let i = 0; i < n; i++) serve(parseMsg(msgs, i));
    }
    await tick();
  }
  return result.v;
}

describe('lazy fill (uffd MISSING served from outside)', () => {
  it('the running target reads a region the test fills on demand: COPY, ZEROPAGE, DONTWAKE + WAKE', async () => {
    const m = await procs.memtool();
    const pages = 64;
    const CLUSTER = 4 * PAGE; // serve an aligned cluster per fault, as the real server does
    const { fd, region } = prepare(m, pages, UFFD.FEATURE_THREAD_ID);

    // What the region should hold: every third cluster zero, the others a pattern.
    const want = Buffer.alloc(pages * PAGE);
    const isZero = (c: number) => c % 3 === 2;
    for (let i = 0; i < want.length; i++) if (!isZero(Math.floor(i / CLUSTER))) want[i] = (i * 29 + (i >> 12) * 5 + 1) & 0xff;

    const faults: UffdMsg[] = [];
    const sum = await serveUntil(fd, m.send(`s ${region.toString(16)} ${want.length}`)(), (msg) => {
      faults.push(msg);
      if (msg.event !== 'pagefault') return;
      const c = Math.floor((msg.address - region) / CLUSTER);
      const dst = region + c * CLUSTER;
      if (isZero(c)) {
        expect(zeroAll(fd, dst, CLUSTER)).toEqual({ copied: CLUSTER, skipped: 0 });
      } else if (c === 0) {
        // Filled without waking: the target stays blocked until the explicit WAKE.
        expect(native.uffdCopy(fd, dst, want, 0, CLUSTER, UFFD.COPY_MODE_DONTWAKE)).toBe(CLUSTER);
        native.uffdWake(fd, dst, CLUSTER);
      } else {
        expect(copyAll(fd, dst, want, c * CLUSTER, CLUSTER)).toEqual({ copied: CLUSTER, skipped: 0 });
      }
    });

    // The target's own hash of what it read.
    expect(sum).toBe(fnv1a(want));
    // One read fault per cluster, at its first page, from the target's thread.
    expect(faults).toEqual(
      Array.from({ length: pages / 4 }, (_, c) => ({ event: 'pagefault', flags: 0n, address: region + c * CLUSTER, tid: m.pid })),
    );
    const back = Buffer.alloc(want.length);
    expect(native.processVmReadv(m.pid, back, 0, [region, want.length])).toBe(want.length);
    expect(back.equals(want)).toBe(true);
  });

  it('while a layout event waits to be read, fills fail with EAGAIN and nothing done', async () => {
    const m = await procs.memtool();
    const { fd, region } = prepare(m, 8, UFFD.FEATURE_EVENT_REMOVE);
    const page = Buffer.alloc(PAGE, 0x5a);
    expect(copyAll(fd, region, page, 0, PAGE)).toEqual({ copied: PAGE, skipped: 0 });

    // The target's madvise(DONTNEED) blocks until the server reads the REMOVE event.
    const zapped = m.send(`z ${region.toString(16)} ${PAGE}`)();
    expect(native.poll([fd], [POLLIN], 10_000)).toEqual([POLLIN]);
    try {
      native.uffdCopy(fd, region + PAGE, page, 0, PAGE, 0n);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'EAGAIN', copied: 0 });
    }
    // Not a page to skip: the wrapper reports it, for the caller to read events and retry.
    expect(errCode(() => copyAll(fd, region + PAGE, page, 0, PAGE))).toBe('EAGAIN');

    const msgs = Buffer.alloc(4 * 32);
    expect(native.uffdRead(fd, msgs)).toBe(1);
    expect(parseMsg(msgs, 0)).toEqual({ event: 'remove', start: region, end: region + PAGE });
    expect(await zapped).toBe('0');
    expect(copyAll(fd, region + PAGE, page, 0, PAGE)).toEqual({ copied: PAGE, skipped: 0 });
    const back = Buffer.alloc(PAGE);
    expect(native.processVmReadv(m.pid, back, 0, [region + PAGE, PAGE])).toBe(PAGE);
    expect(back).toEqual(page);
  });
});
