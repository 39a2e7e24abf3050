// A pass's PARENT ranges reach its index only when the index is written (PagesWriter.complete):
// a final dump works them out once the process runs again. They go in their places between
// the data, adjacent ones merge, and one that overlaps the data is a bug, refused.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CompressPool } from '../../src/images/compress-pool.js';
import { decodePagemap, PAGE, RangeKind } from '../../src/images/pagemap.js';
import { pagemapFile, PagesWriter } from '../../src/images/pages.js';
import { removeDir, tempDir } from '../helpers/cli.js';

const PID = 4343;
const BASE = 0x40000000;
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

const at = (page: number) => BASE + page * PAGE;
const span = (from: number, to: number) => ({ start: at(from), end: at(to) });

/** Pages 2-3 and 6 written, then completed with the given parent ranges. */
async function writeSet(parents: Array<{ start: number; end: number }>): Promise<{ dir: string; w: PagesWriter }> {
  const dir = tempDir('parents');
  dirs.push(dir);
  const pool = new CompressPool(0, 1);
  const w = new PagesWriter(dir, PID, pool, 4 * PAGE);
  try {
    await w.addData(at(2), Buffer.alloc(2 * PAGE, 1));
    await w.addData(at(6), Buffer.alloc(PAGE, 2));
    await w.writeFrames();
    await w.complete(undefined, () => parents);
  } finally {
    await pool.close();
  }
  return { dir, w };
}

describe('PARENT ranges given when the index is written', () => {
  it('go between the data in address order, adjacent ones merged, and are counted', async () => {
    const { dir, w } = await writeSet([span(0, 2), span(4, 5), span(5, 6), span(7, 9)]);
    const ix = decodePagemap(readFileSync(join(dir, pagemapFile(PID))), 'x');
    expect(ix.ranges.map((r) => [(r.start - BASE) / PAGE, r.nrPages, r.kind])).toEqual([
      [0, 2, RangeKind.Parent],
      [2, 2, RangeKind.Data],
      [4, 2, RangeKind.Parent],
      [6, 1, RangeKind.Data],
      [7, 2, RangeKind.Parent],
    ]);
    expect(w.parentPages).toBe(6);
  });

  it('one overlapping the data is refused; with none, the index holds the data alone', async () => {
    await expect(writeSet([span(3, 4)])).rejects.toThrow(/pages 4343: parent range .* overlaps/);
    await expect(writeSet([span(5, 7)])).rejects.toThrow(/overlaps/);
    const { dir } = await writeSet([]);
    expect(decodePagemap(readFileSync(join(dir, pagemapFile(PID))), 'x').ranges.every((r) => r.kind === RangeKind.Data)).toBe(true);
  });
});
