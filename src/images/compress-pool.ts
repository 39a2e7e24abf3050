// A pool of compression workers (one per core by default). Batches are answered in any
// order; callers await the promise of each batch in the order they need them.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { distModule } from '../paths.js';
import type { CompressReply, CompressRequest } from './compress-worker.js';

export interface CompressedBatch {
  data: Buffer;
  sizes: number[];
  crcs: number[];
  rawSizes: number[];
}

export class CompressPool {
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (b: CompressedBatch) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private rr = 0;

  constructor(
    readonly level = 3,
    threads = Math.max(1, Math.min(availableParallelism(), 8)),
  ) {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(distModule('images/compress-worker.js'));
      w.on('message', (r: CompressReply) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        p?.resolve({ data: Buffer.from(r.out), sizes: r.sizes, crcs: r.crcs, rawSizes: r.rawSizes });
      });
      w.on('error', (e) => this.failAll(e));
      this.workers.push(w);
    }
  }

  /**
   * Resolves once every worker has loaded zstd and compressed something: call it before
   * freezing a process, so worker start-up (tens of ms) is not spent while it is stopped.
   */
  async warm(): Promise<void> {
    await Promise.all(this.workers.map(() => this.compress(Buffer.alloc(4096), 4096, 4096)));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Compresses raw[0, len) as frames of frameRawSize. The buffer is transferred away. */
  compress(raw: Buffer, len: number, frameRawSize: number): Promise<CompressedBatch> {
    const id = this.nextId++;
    const ab = raw.buffer as ArrayBuffer;
    const whole = raw.byteOffset === 0 && raw.byteLength === ab.byteLength;
    // Transfer only buffers we own entirely; a slice of a shared pool buffer is copied.
    const body = whole ? ab : ab.slice(raw.byteOffset, raw.byteOffset + len);
    const req: CompressRequest = { id, level: this.level, frameRawSize, raw: body, rawLen: len };
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage(req, [body]);
    });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
