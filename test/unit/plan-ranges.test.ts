// The range arithmetic of a pass plan (src/dump/plan.ts): the parent keeps its pages minus
// the written set; the pages saved are the written set that is still present. A decoded
// index (its ranges in typed arrays) gives the same parent ranges as its range objects.
import { describe, expect, it } from 'vitest';
import { parentRanges, parentsOf, subtract } from '../../src/dump/plan.js';
import { decodePagemap, encodePagemap, PAGE, RangeKind, type PageRangeEntry } from '../../src/images/pagemap.js';

const r = (start: number, end: number) => ({ start, end });

describe('plan ranges', () => {
  it('subtract leaves the gaps', () => {
    expect(subtract([r(0, 10)], [r(2, 3), r(5, 7)])).toEqual([r(0, 2), r(3, 5), r(7, 10)]);
    expect(subtract([r(0, 10)], [r(0, 10)])).toEqual([]);
  });
  it('the parent gives one range across its own DATA / PARENT / ZERO seams, split only at holes and at the VMA', () => {
    const P = (page: number, nr: number, kind: RangeKind): PageRangeEntry => ({ start: page * PAGE, nrPages: nr, kind, streamOff: 0 });
    const ranges = [P(0, 2, RangeKind.Parent), P(2, 1, RangeKind.Data), P(3, 4, RangeKind.Parent), P(7, 1, RangeKind.Zero), P(10, 2, RangeKind.Data)];
    const index = { frameRawSize: 65536, ranges, frames: [], pagesBytes: 0, rawBytes: 0 };
    // The same from the index as a dump reads it: decoded, its ranges in typed arrays.
    const data = ranges.filter((x) => x.kind === RangeKind.Data);
    let off = 0;
    for (const d of data) {
      d.streamOff = off;
      off += d.nrPages * PAGE;
    }
    const decoded = decodePagemap(encodePagemap({ ...index, frames: [{ fileOff: 0, compSize: 10, rawSize: off, crc: 0 }], pagesBytes: 10, rawBytes: off }), 'x');
    expect(decoded.spans?.start.length).toBe(ranges.length);
    for (const ix of [index, decoded]) {
      const parent = { vmas: [], index: ix };
      expect(parentRanges(parent, 0, 12 * PAGE)).toEqual([r(0, 8 * PAGE), r(10 * PAGE, 12 * PAGE)]);
      expect(parentRanges(parent, 1 * PAGE, 11 * PAGE)).toEqual([r(1 * PAGE, 8 * PAGE), r(10 * PAGE, 11 * PAGE)]);
      expect(parentRanges(parent, 8 * PAGE, 10 * PAGE)).toEqual([]);
    }
    // Its range objects, made on first use, are the ranges written.
    expect(decoded.ranges).toEqual(ranges);
  });

  it('parentsOf: per slice the parent minus the written pages, merged across slice seams', () => {
    const P = (page: number, nr: number, kind: RangeKind): PageRangeEntry => ({ start: page * PAGE, nrPages: nr, kind, streamOff: 0 });
    const parent = { vmas: [], index: { frameRawSize: 65536, ranges: [P(0, 6, RangeKind.Parent), P(6, 2, RangeKind.Data), P(10, 4, RangeKind.Parent)], frames: [], pagesBytes: 0, rawBytes: 0 } };
    const w = (page: number, nr = 1) => ({ start: page * PAGE, end: (page + nr) * PAGE, categories: 0 });
    const slices = [
      { start: 0, end: 4 * PAGE, written: [w(1)] },
      { start: 4 * PAGE, end: 12 * PAGE, written: [w(7, 4)] },
      { start: 12 * PAGE, end: 16 * PAGE, written: [] },
    ];
    // Page 1 and 7-10 written; 8-9 were never in the parent; 3|4 and 11|12 are slice seams.
    expect(parentsOf(parent, slices)).toEqual([r(0, PAGE), r(2 * PAGE, 7 * PAGE), r(11 * PAGE, 14 * PAGE)]);
    expect(parentsOf(undefined, slices)).toEqual([]);
  });
});
