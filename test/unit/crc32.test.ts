// The frames' CRC-32 is zlib's, whichever implementation computes it: images written before
// and after the change, or by either, read back alike.
import { randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Source } from '../../src/images/crc32.js';

describe('crc32', () => {
  it('is the PCLMULQDQ implementation from the dependencies, not the fallback', () => {
    expect(crc32Source).toBe('@node-rs/crc32');
  });

  it("equals zlib's at every length and offset, from a Buffer or a Uint8Array, with a seed", () => {
    const b = randomBytes(300_000);
    for (const [off, len] of [[0, 0], [0, 1], [3, 15], [5, 63], [1, 64], [7, 4096], [11, 65536], [0, 300_000], [13, 99_999]] as const) {
      const piece = b.subarray(off, off + len);
      expect(crc32(piece)).toBe(zlibCrc32(piece));
      expect(crc32(new Uint8Array(b.buffer, b.byteOffset + off, len))).toBe(zlibCrc32(piece));
      expect(crc32(piece, 0xdeadbeef)).toBe(zlibCrc32(piece, 0xdeadbeef));
    }
  });
});
