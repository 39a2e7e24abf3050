// A compression worker: takes a batch of raw page data, cuts it into frames of
// frameRawSize, compresses each as an independent zstd frame and returns them packed,
// with sizes and CRCs. Runs off the main thread: zstd-napi calls are synchronous.
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { newCompressor, zstd } from './zstd.js';

export interface CompressRequest {
  id: number;
  level: number;
  frameRawSize: number;
  raw: ArrayBuffer;
  rawLen: number;
}

export interface CompressReply {
  id: number;
  out: ArrayBuffer;
  sizes: number[];
  crcs: number[];
  rawSizes: number[];
}

const compressors = new Map<number, ReturnType<typeof newCompressor>>();

parentPort!.on('message', (m: CompressRequest) => {
  let c = compressors.get(m.level);
  if (!c) compressors.set(m.level, (c = newCompressor(m.level)));
  const raw = new Uint8Array(m.raw, 0, m.rawLen);
  const nFrames = Math.ceil(m.rawLen / m.frameRawSize);
  const out = Buffer.allocUnsafe(nFrames * zstd.compressBound(m.frameRawSize));
  const sizes: number[] = [];
  const crcs: number[] = [];
  const rawSizes: number[] = [];
  let o = 0;
  for (let off = 0; off < m.rawLen; off += m.frameRawSize) {
    const piece = raw.subarray(off, Math.min(off + m.frameRawSize, m.rawLen));
    const n = c.compress(out.subarray(o), piece);
    sizes.push(n);
    crcs.push(crc32(out.subarray(o, o + n)));
    rawSizes.push(piece.length);
    o += n;
  }
  const packed = out.buffer.slice(out.byteOffset, out.byteOffset + o);
  const reply: CompressReply = { id: m.id, out: packed, sizes, crcs, rawSizes };
  parentPort!.postMessage(reply, [packed]);
});
