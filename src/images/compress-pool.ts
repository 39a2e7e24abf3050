// A pool of compression workers (one per core by default). Batches are answered in any
// order; callers await the promise of each batch in the order they need them.
//
// Buffers are recycled: a raw batch comes back from its worker with the reply, and a caller
// done with a batch's frames gives them back (recycle); buffer() and later requests reuse
// both. A fresh buffer per batch each way (plus a copy of the output) kept the allocator,
// page faults and the GC busy on cores that the compressors need.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { crc32 } from './crc32.js';
import { distModule } from '../paths.js';
import type { CompressReply, CompressRequest } from './compress-worker.js';
import { zstd } from './zstd.js';

export interface CompressedBatch {
  /** The packed frames (until the batch is given back with recycle()). */
  data: Buffer;
  sizes: number[];
  crcs: number[];
  rawSizes: number[];
  /** Level 0: frames stored as they are. */
  stored: boolean;
}

/**
 * Level 0 on the calling thread: only the CRCs to compute (about 1 ms per 4 MiB), where a
 * worker round trip costs more in wake-ups and context switches than that on a machine whose
 * cores are busy reading pages, as in a final dump.
 */
function stored(raw: Buffer, len: number, frameRawSize: number): CompressedBatch {
  const sizes: number[] = [];
  const crcs: number[] = [];
  for (let off = 0; off < len; off += frameRawSize) {
    const piece = raw.subarray(off, Math.min(off + frameRawSize, len));
    sizes.push(piece.length);
    crcs.push(crc32(piece));
  }
  return { data: raw.subarray(0, len), sizes, crcs, rawSizes: sizes.slice(), stored: true };
}

export class CompressPool {
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (b: CompressedBatch) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private rr = 0;
  /** Free raw buffers by size, and free output buffers. */
  private freeRaw = new Map<number, ArrayBuffer[]>();
  private freeOut: ArrayBuffer[] = [];

  constructor(
    readonly level = 3,
    threads = Math.max(1, Math.min(availableParallelism(), 8)),
  ) {
    // Level 0 is done inline (see stored()): no workers.
    for (let i = 0; i < (level === 0 ? 0 : threads); i++) {
      const w = new Worker(distModule('images/compress-worker.js'));
      w.on('message', (r: CompressReply) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        this.keepRaw(r.raw);
        p?.resolve({ data: Buffer.from(r.out, 0, r.outLen), sizes: r.sizes, crcs: r.crcs, rawSizes: r.rawSizes, stored: false });
      });
      w.on('error', (e) => this.failAll(e));
      this.workers.push(w);
    }
  }

  /**
   * Resolves once every worker has loaded zstd and compressed something: call it before
   * freezing a process, so worker start-up (tens of ms) is not spent while it is stopped.
   */
  async warm(buffers: Array<{ size: number; count: number }> = []): Promise<void> {
    await Promise.all(this.workers.map(() => this.compress(Buffer.alloc(4096), 4096, 4096)));
    // Memory touched for the first time can cost 10 µs a page (on a VM whose host backs
    // guest pages lazily: this one), ten times a copy: a caller about to copy while a
    // process is frozen has its buffers touched now. Written, not just allocated: a large
    // Buffer.alloc is fresh mmap'd memory that calloc knows is zero and leaves untouched.
    for (const b of buffers) for (let i = 0; i < Math.min(b.count, this.keep()); i++) this.keepRaw(Buffer.allocUnsafeSlow(b.size).fill(0).buffer as ArrayBuffer);
  }

  get size(): number {
    return this.workers.length;
  }

  /** A buffer of exactly `size` bytes (its own ArrayBuffer) to fill and compress: a recycled one when there is one. */
  buffer(size: number): Buffer {
    const ab = this.freeRaw.get(size)?.pop();
    return ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(size);
  }

  /** Gives back a buffer from buffer() that was not handed to compress(); it is not to be used after. */
  giveBack(raw: Buffer): void {
    this.keepRaw(raw.buffer as ArrayBuffer);
  }

  /** Gives a batch's output buffer back once its frames are written; `b.data` is not to be used after. */
  recycle(b: CompressedBatch): void {
    // Stored frames are the raw buffer itself (see stored()).
    if (b.stored) this.keepRaw(b.data.buffer as ArrayBuffer);
    else this.keepOut(b.data.buffer as ArrayBuffer);
  }

  private keepOut(ab: ArrayBuffer): void {
    if (this.freeOut.length < this.keep()) this.freeOut.push(ab);
  }

  /** How many free buffers of one kind to keep: about what is in flight at once. */
  private keep(): number {
    return Math.max(this.workers.length, 2) * 4;
  }

  private keepRaw(ab: ArrayBuffer): void {
    if (ab.byteLength < 64 * 1024) return; // warm-up and other small requests
    const list = this.freeRaw.get(ab.byteLength) ?? [];
    if (list.length < this.keep()) list.push(ab);
    this.freeRaw.set(ab.byteLength, list);
  }

  /** Compresses raw[0, len) as frames of frameRawSize. The buffer is transferred away. */
  compress(raw: Buffer, len: number, frameRawSize: number): Promise<CompressedBatch> {
    const ab = raw.buffer as ArrayBuffer;
    const whole = raw.byteOffset === 0 && raw.byteLength === ab.byteLength;
    if (this.level === 0) return Promise.resolve(stored(whole ? raw : Buffer.from(raw.subarray(0, len)), len, frameRawSize));
    const id = this.nextId++;
    // Transfer only buffers we own entirely; a slice of a shared pool buffer is copied.
    const body = whole ? ab : ab.slice(raw.byteOffset, raw.byteOffset + len);
    // Lend a free output buffer that is big enough (the worker makes one otherwise).
    const need = Math.ceil(len / frameRawSize) * zstd.compressBound(frameRawSize);
    const i = this.freeOut.findIndex((o) => o.byteLength >= need);
    const out = i >= 0 ? this.freeOut.splice(i, 1)[0] : undefined;
    const req: CompressRequest = { id, level: this.level, frameRawSize, raw: body, rawLen: len, out };
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage(req, out ? [body, out] : [body]);
    });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
    this.freeRaw.clear();
    this.freeOut = [];
  }
}
