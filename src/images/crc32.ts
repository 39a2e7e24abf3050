// CRC-32 (zlib's polynomial) of image frames and indexes. A final dump computes it over every
// page it stores while the process is frozen: @node-rs/crc32 folds with PCLMULQDQ (about
// 10 GB/s here), where Node 20's zlib crc32 is table-driven (4-5 GB/s warm, about 1.3 on
// pages fresh from another core's copy). The same values either way: zlib's is the fallback
// should the prebuilt binary be missing.
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

export type Crc32 = (data: Uint8Array, initial?: number) => number;

function load(): { crc32: Crc32; source: string } {
  try {
    const m = createRequire(import.meta.url)('@node-rs/crc32') as { crc32: (data: Buffer, initial?: number) => number };
    const crc32: Crc32 = (data, initial) => m.crc32(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength), initial);
    return { crc32, source: '@node-rs/crc32' };
  } catch {
    return { crc32: (data, initial) => zlibCrc32(data, initial), source: 'node:zlib' };
  }
}

const loaded = load();
export const crc32: Crc32 = loaded.crc32;
/** Which implementation is in use (both give the same values). */
export const crc32Source: string = loaded.source;
