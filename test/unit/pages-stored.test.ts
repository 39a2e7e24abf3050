// Page frames stored without compression (level 0): written, flagged in the index, read back
// exactly, and checked (a flipped byte, an unknown flag, a stored frame of the wrong size).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CompressPool } from '../../src/images/compress-pool.js';
import { ImageError } from '../../src/images/errors.js';
import { decodePagemap, encodePagemap, HEADER_SIZE, PAGE, RANGE_SIZE } from '../../src/images/pagemap.js';
import { pagemapFile, pagesFile, PagesReader, PagesWriter } from '../../src/images/pages.js';
import { removeDir, tempDir } from '../helpers/cli.js';

const PID = 4242;
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/** 40 pages: half text-like (compressible), half random; written as two ranges with a hole. */
function pages(): Buffer {
  const b = Buffer.alloc(40 * PAGE);
  for (let i = 0; i < 20; i++) b.write(`page ${i} `.repeat(400), i * PAGE, PAGE, 'latin1');
  randomBytes(20 * PAGE).copy(b, 20 * PAGE);
  return b;
}

async function writeSet(level: number, data: Buffer, reserve = 0): Promise<string> {
  const dir = tempDir('stored');
  dirs.push(dir);
  const pool = new CompressPool(level, 2);
  try {
    const w = new PagesWriter(dir, PID, pool, 8 * PAGE);
    if (reserve) await w.reserve(reserve);
    await w.addData(0x10000, data.subarray(0, 24 * PAGE));
    await w.addData(0x10000 + 28 * PAGE, data.subarray(24 * PAGE));
    await w.writeFrames();
    await w.complete(undefined, () => [{ start: 0x10000 + 24 * PAGE, end: 0x10000 + 28 * PAGE }]);
  } finally {
    await pool.close();
  }
  return dir;
}

function readAll(dir: string, len: number): Buffer {
  const r = PagesReader.open(dir, PID);
  try {
    const out = Buffer.alloc(len);
    r.readStream(0, len, out, 0);
    return out;
  } finally {
    r.close();
  }
}

describe('stored page frames (compression level 0)', () => {
  it('overwrite a reservation, which is cut to what was written', async () => {
    const data = pages();
    for (const level of [0, 3]) {
      for (const reserve of [4 * PAGE, 200 * PAGE]) {
        const dir = await writeSet(level, data, reserve);
        const ix = decodePagemap(readFileSync(join(dir, pagemapFile(PID))), 'x');
        expect(readFileSync(join(dir, pagesFile(PID))).length).toBe(ix.pagesBytes);
        expect(readAll(dir, data.length).equals(data)).toBe(true);
      }
    }
  });

  it('are flagged, take their raw size, and read back exactly', async () => {
    const data = pages();
    const stored = await writeSet(0, data);
    const ix = decodePagemap(readFileSync(join(stored, pagemapFile(PID))), 'x');
    expect(ix.frames.length).toBe(5);
    for (const f of ix.frames) {
      expect(f.stored).toBe(true);
      expect(f.compSize).toBe(f.rawSize);
    }
    expect(ix.pagesBytes).toBe(data.length);
    expect(readAll(stored, data.length).equals(data)).toBe(true);

    const zst = await writeSet(3, data);
    const zix = decodePagemap(readFileSync(join(zst, pagemapFile(PID))), 'x');
    expect(zix.frames.every((f) => !f.stored)).toBe(true);
    expect(zix.pagesBytes).toBeLessThan(data.length);
    expect(readAll(zst, data.length).equals(data)).toBe(true);
  });

  it('a flipped byte in a stored frame is a checksum error naming the pages file', async () => {
    const dir = await writeSet(0, pages());
    const path = join(dir, pagesFile(PID));
    const b = readFileSync(path);
    b[3 * 8 * PAGE + 100]! ^= 0x40;
    writeFileSync(path, b);
    expect(() => readAll(dir, 40 * PAGE)).toThrow(ImageError);
    expect(() => readAll(dir, 40 * PAGE)).toThrow(new RegExp(`${pagesFile(PID)}.*frame 3 .*checksum mismatch`));
  });

  it('an unknown frame flag, or a stored frame whose sizes differ, is refused', async () => {
    const dir = await writeSet(0, pages());
    const ix = decodePagemap(readFileSync(join(dir, pagemapFile(PID))), 'x');
    const b = encodePagemap(ix);
    b.writeUInt32LE(4, frame0(ix.ranges.length) + 20);
    // Checksums fixed after the edit: the flag itself must be refused.
    expect(() => decodePagemap(withChecksums(b), 'pm').frameAt!(0)).toThrow(/pm.*frame 0: unknown flags 0x4/);
    const sized = { ...ix, frames: ix.frames.map((f, i) => (i === 0 ? { ...f, compSize: f.compSize - 1 } : f)) };
    expect(() => decodePagemap(encodePagemap(sized), 'pm').frameAt!(0)).toThrow(/frame 0: stored, but/);
  });

  it('an index encoded into memory given ahead, even full of old bytes, is the same bytes', async () => {
    const dir = await writeSet(0, pages());
    const ix = decodePagemap(readFileSync(join(dir, pagemapFile(PID))), 'x');
    const fresh = encodePagemap(ix);
    const memory = Buffer.alloc(fresh.length + 100, 0xa5);
    const into = encodePagemap(ix, memory);
    expect(into.buffer).toBe(memory.buffer); // written in place
    expect(into.equals(fresh)).toBe(true);
    // Too small: fresh memory instead, and the same bytes again.
    const small = Buffer.alloc(64, 0xa5);
    const got = encodePagemap(ix, small);
    expect(got.buffer).not.toBe(small.buffer);
    expect(got.equals(fresh)).toBe(true);
  });

  it('a version 1 index (no flags) still reads; flags in it are refused', async () => {
    const dir = await writeSet(3, pages());
    const b = Buffer.from(readFileSync(join(dir, pagemapFile(PID))));
    const nrRanges = decodePagemap(b, 'x').ranges.length;
    b.writeUInt32LE(1, 8);
    expect(decodePagemap(withChecksums(b), 'v1').frames.length).toBe(5);
    b.writeUInt32LE(1, frame0(nrRanges) + 20);
    expect(() => decodePagemap(withChecksums(b), 'v1').frameAt!(0)).toThrow(/frame 0: unknown flags 0x1/);
  });
});

const frame0 = (nrRanges: number) => HEADER_SIZE + nrRanges * RANGE_SIZE;

/** Recomputes an index's two checksums after an edit of its bytes (body CRC at 56, header CRC at 60). */
function withChecksums(b: Buffer): Buffer {
  b.writeUInt32LE(crc32(b.subarray(HEADER_SIZE)), 56);
  b.writeUInt32LE(crc32(b.subarray(0, 60)), 60);
  return b;
}
