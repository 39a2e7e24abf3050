// The lazy server's decisions, without a kernel: what a fault copies and zero-fills, what
// the background pushes (hottest first), and how remap / remove / unmap / fork change it.
import { describe, expect, it } from 'vitest';
import { batchBytes, PAGE, Pending } from '../../src/lazy/pending.js';

const K = 1024;
const MB = 1 << 20;
// One VMA [1 MiB, 2 MiB): data pages from set 1 in the first half, set 0 (hotter) at 1.75 MiB.
function sample(): Pending {
  return new Pending(
    [
      { addr: MB, pages: 128, set: 1, streamOff: 0 },
      { addr: MB + 768 * K, pages: 16, set: 0, streamOff: 0 },
    ],
    [{ start: MB, end: 2 * MB }],
  );
}

describe('Pending', () => {
  it('answers a fault with the aligned cluster: owed pages copied, the rest zero-filled', () => {
    const p = sample();
    const plan = p.fault(MB + 5 * PAGE + 17, 64 * K);
    expect(plan.copies).toEqual([{ dst: MB, len: 64 * K, set: 1, streamOff: 0 }]);
    expect(plan.zeros).toEqual([]);
    expect(p.owed).toBe(144 - 16);
    // The same cluster again (another thread raced): nothing left to copy.
    expect(p.fault(MB + 6 * PAGE, 64 * K).copies).toEqual([]);
  });

  it('zero-fills a cluster of never-present pages once, then only the faulting page', () => {
    const p = sample();
    const at = MB + 600 * K; // no data there: fresh memory
    const first = p.fault(at, 64 * K);
    expect(first.copies).toEqual([]);
    expect(first.zeros).toEqual([{ start: MB + 576 * K, len: 64 * K }]);
    expect(p.fault(at, 64 * K).zeros).toEqual([{ start: at, len: PAGE }]);
  });

  it('pushes the newest set first, then the rest in address order, in bounded batches', () => {
    const p = sample();
    const a = p.nextBatch(32 * K);
    expect(a).toEqual([{ dst: MB + 768 * K, len: 32 * K, set: 0, streamOff: 0 }]);
    const b = p.nextBatch(1 * MB);
    expect(b[0]).toEqual({ dst: MB + 800 * K, len: 32 * K, set: 0, streamOff: 32 * K });
    expect(b[1]).toEqual({ dst: MB, len: 512 * K, set: 1, streamOff: 0 });
    expect(p.owed).toBe(0);
    expect(p.nextBatch(MB)).toEqual([]);
  });

  it('never fills pages the process removed or unmapped, and zero-fills them if touched again', () => {
    const p = sample();
    p.drop(MB, MB + 64 * K, false); // MADV_DONTNEED
    expect(p.owed).toBe(144 - 16);
    const f = p.fault(MB + PAGE, 64 * K);
    expect(f.copies).toEqual([]);
    expect(f.zeros).toEqual([{ start: MB, len: 64 * K }]);
    p.drop(MB + 64 * K, MB + 512 * K, true); // munmap
    expect(p.owed).toBe(16);
    expect(p.nextBatch(4 * MB).map((c) => c.dst)).toEqual([MB + 768 * K]);
  });

  it('moves owed pages with a remap, keeping where their data is', () => {
    const p = sample();
    p.remap(MB + 256 * K, 8 * MB, 128 * K); // the middle of the first piece moves
    const plan = p.fault(8 * MB + PAGE, 64 * K);
    expect(plan.copies).toEqual([{ dst: 8 * MB, len: 64 * K, set: 1, streamOff: 256 * K }]);
    expect(p.fault(MB + 256 * K, 64 * K).copies).toEqual([]); // nothing is owed there any more
  });

  it('gives a forked child the same debt, paid independently', () => {
    const p = sample();
    p.fault(MB, 64 * K);
    const child = p.clone();
    expect(child.owed).toBe(p.owed);
    child.nextBatch(4 * MB);
    expect(child.owed).toBe(0);
    expect(p.owed).toBe(144 - 16);
  });

  it('takes back ops that could not be done', () => {
    const p = sample();
    const ops = p.nextBatch(64 * K);
    p.giveBack(ops);
    expect(p.owed).toBe(144);
    expect(p.nextBatch(64 * K)).toEqual(ops);
  });

  it('uses small batches right after a fault and large ones when idle', () => {
    expect(batchBytes(0)).toBeLessThan(batchBytes(10));
    expect(batchBytes(10)).toBeLessThan(batchBytes(1000));
  });
});
