// How the copy cuts planned pages into process_vm_readv batches: at most COPY_CHUNK bytes
// and 1024 pieces each, every batch but the last a whole number of frames (so that it goes to
// the writer without a copy), and nothing lost, doubled or reordered on the way.
import { describe, expect, it } from 'vitest';
import { Chunker, COPY_CHUNK, ItemStream, type Chunk } from '../../src/dump/memory.js';
import type { Item } from '../../src/dump/plan.js';

const PG = 4096;
const FRAME = 16 * PG;

/** Runs of the given page counts, a page apart (the pages between stay in the parent). */
function plan(runs: number[]): Item[] {
  const items: Item[] = [];
  let at = 0x10000000;
  for (const n of runs) {
    items.push({ start: at, end: at + n * PG, readable: true });
    at += (n + 1) * PG;
  }
  return items;
}

/** Every chunk the copy would read, in order. */
function chunks(items: Item[], align: number): Chunk[] {
  const c = new Chunker(align);
  const out = items.flatMap((p) => c.push(p));
  const last = c.end();
  return last ? [...out, last] : out;
}

/** Page addresses, in order, of data items or of chunk pieces. */
const pagesOf = (rs: Array<{ start: number; end: number }>) => rs.flatMap((r) => Array.from({ length: (r.end - r.start) / PG }, (_, i) => r.start + i * PG));

describe('copy chunks', () => {
  const cases: Array<[string, number[]]> = [
    ['3000 scattered pages', Array.from({ length: 3000 }, () => 1)],
    ['runs of 1 to 5 pages', Array.from({ length: 2500 }, (_, i) => (i % 5) + 1)],
    ['a few long runs', [5000, 3, 1, 1200, 7]],
    ['less than a frame', [1, 2, 3]],
  ];
  for (const [name, runs] of cases) {
    it(name, () => {
      const items = plan(runs);
      const out = [...chunks(items, FRAME)];
      out.forEach((c, i) => {
        expect(c.pieces.length).toBeLessThanOrEqual(1024);
        expect(c.bytes).toBeLessThanOrEqual(COPY_CHUNK);
        expect(c.bytes).toBe(c.pieces.reduce((n, p) => n + p.end - p.start, 0));
        if (i < out.length - 1) expect(c.bytes % FRAME).toBe(0);
        for (const p of c.pieces) expect(p.end).toBeGreaterThan(p.start);
      });
      expect(pagesOf(out.flatMap((c) => c.pieces))).toEqual(pagesOf(items));
    });
  }
});

describe('ItemStream (a plan under way, handed to the copy)', () => {
  const item = (start: number, pages = 1): Item => ({ start, end: start + pages * PG, readable: true });

  it('hands over what was pushed since the last take, in order, and counts the bytes', async () => {
    const s = new ItemStream();
    s.push([item(0), item(2 * PG, 3)]);
    expect(s.dataBytes).toBe(4 * PG);
    expect(s.take().map((i) => i.start)).toEqual([0, 2 * PG]);
    expect(s.take()).toEqual([]);
    let woke = false;
    const waiting = s.wait().then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false); // nothing new yet
    s.push([item(6 * PG)]);
    await waiting;
    expect(s.take().map((i) => i.start)).toEqual([6 * PG]);
    expect(s.isEnded).toBe(false);
    s.end();
    await s.wait(); // resolves at once once ended
    expect(s.isEnded).toBe(true);
  });

  it("makes the copy's next take throw the plan's error, and wakes a waiting copy", async () => {
    const s = new ItemStream();
    const waiting = s.wait();
    s.fail(new Error('scan failed'));
    await waiting;
    expect(() => s.take()).toThrow('scan failed');
  });

  it('ItemStream.of(items) is a whole plan: ended, everything in one take', () => {
    const s = ItemStream.of([item(0), item(PG)]);
    expect(s.isEnded).toBe(true);
    expect(s.take()).toHaveLength(2);
  });
});
