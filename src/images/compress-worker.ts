// A compression worker: takes a batch of raw page data, cuts it into frames of
// frameRawSize, compresses each as an independent zstd frame and returns them packed,
// with sizes and CRCs. Runs off the main thread: zstd-napi calls are synchronous.
// Buffers travel both ways and are never copied: the raw batch goes back with the reply (the
// pool reuses it), and the frames go into the buffer the pool lent, if it did and it is big
// enough, else into a new one. (Level 0, stored frames, never comes here: see compress-pool.ts.)
import { parentPort } from 'node:worker_threads';
import { crc32 } from './crc32.js';
import { newCompressor, zstd } from './zstd.js';

export interface CompressRequest {
  id: number;
  level: number;
  frameRawSize: number;
  raw: ArrayBuffer;
  rawLen: number;
  /** A buffer to compress into, lent by the pool. */
  out?: ArrayBuffer;
}

export interface CompressReply {
  id: number;
  /** The packed frames are out[0, outLen). */
  out: ArrayBuffer;
  outLen: number;
  /** The request's raw buffer, handed back. */
  raw: ArrayBuffer;
  sizes: number[];
  crcs: number[];
  rawSizes: number[];
}

const compressors = new Map<number, ReturnType<typeof newCompressor>>();

parentPort!.on('message', (m: CompressRequest) => {
  const sizes: number[] = [];
  const crcs: number[] = [];
  const rawSizes: number[] = [];
  let c = compressors.get(m.level);
  if (!c) compressors.set(m.level, (c = newCompressor(m.level)));
  const raw = new Uint8Array(m.raw, 0, m.rawLen);
  const nFrames = Math.ceil(m.rawLen / m.frameRawSize);
  const need = nFrames * zstd.compressBound(m.frameRawSize);
  const outBuf = m.out && m.out.byteLength >= need ? m.out : new ArrayBuffer(need);
  const out = new Uint8Array(outBuf);
  let o = 0;
  for (let off = 0; off < m.rawLen; off += m.frameRawSize) {
    const piece = raw.subarray(off, Math.min(off + m.frameRawSize, m.rawLen));
    const n = c.compress(out.subarray(o), piece);
    sizes.push(n);
    crcs.push(crc32(out.subarray(o, o + n)));
    rawSizes.push(piece.length);
    o += n;
  }
  const reply: CompressReply = { id: m.id, out: outBuf, outLen: o, raw: m.raw, sizes, crcs, rawSizes };
  parentPort!.postMessage(reply, [outBuf, m.raw]);
});
