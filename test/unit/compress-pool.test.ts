// CompressPool.warm: the copy buffers a final dump reads pages into while the process is
// frozen must be resident before the freeze (a first touch costs ~10 µs a page on this VM).
import { describe, expect, it } from 'vitest';
import { CompressPool } from '../../src/images/compress-pool.js';

const SIZE = 4 << 20;
const COUNT = 8;

describe('CompressPool.warm', () => {
  it('hands out buffers whose pages are already touched', async () => {
    const pool = new CompressPool(0);
    try {
      await pool.warm([{ size: SIZE, count: COUNT }]);
      const bufs = Array.from({ length: COUNT }, () => pool.buffer(SIZE));
      // Writing every page of untouched memory faults once a page (8192 here); of warm memory, not at all.
      const before = process.resourceUsage().minorPageFault;
      for (const b of bufs) b.fill(0xa5);
      const faults = process.resourceUsage().minorPageFault - before;
      expect(faults).toBeLessThan((COUNT * SIZE) / 4096 / 8);
    } finally {
      await pool.close();
    }
  });

  it('takes back a buffer that was not handed over (the copy of a short last chunk), for the next of its size', async () => {
    const pool = new CompressPool(0);
    try {
      await pool.warm([{ size: SIZE, count: 1 }]);
      const b = pool.buffer(SIZE);
      expect(pool.buffer(SIZE).buffer).not.toBe(b.buffer); // the only warm one is out
      pool.giveBack(b.subarray(0, 4096)); // a view of it: its whole buffer goes back
      expect(pool.buffer(SIZE).buffer).toBe(b.buffer);
    } finally {
      await pool.close();
    }
  });
});
