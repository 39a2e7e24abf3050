// The raw limits of the dump's page pipeline, measured on the victim it is about to dump:
// process_vm_readv, zstd on the victim's own pages (one core, and the worker pool), and the
// disk (write + fsync in the images directory's filesystem).
import { closeSync, constants, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../src/images/crc32.js';
import { CompressPool, type CompressedBatch } from '../src/images/compress-pool.js';
import { DEFAULT_FRAME_RAW } from '../src/images/pages.js';
import { newCompressor, zstd } from '../src/images/zstd.js';
import { native } from '../src/kernel/native.js';
import type { Victim } from './victim.js';

const MiB = 1 << 20;
/** The dump reads 4 MiB chunks and hands each whole to a compressor: the pool test does too. */
const BATCH = 4 * MiB;

export interface Rate {
  bytes: number;
  ms: number;
  /** 1e9 bytes per second. */
  gbps: number;
}

export function rate(bytes: number, ms: number): Rate {
  return { bytes, ms, gbps: ms > 0 ? bytes / ms / 1e6 : 0 };
}

export interface Limits {
  /** process_vm_readv, 1 MiB iovecs, 16 per call, synchronous, on this thread. */
  readv: Rate;
  /** What the dump does: processVmReadvAsync of 4 MiB chunks (libuv pool), one at a time. */
  readvAsync4M: Rate;
  /** zstd level, 64 KiB frames + CRC32, on the main thread. */
  compress1: Rate;
  /** The same through CompressPool (worker threads), batches of 4 MiB as the dump's, many in flight. */
  compressPool: Rate & { threads: number };
  /** Compression ratio of the sample (raw / compressed). The zstd rates are the best of two runs. */
  ratio: number;
  sampleBytes: number;
  /** write(2) of ~1 MiB/ratio blocks + fsync, of what the image would hold. */
  disk: Rate;
  /** The disk's rate in page data (disk GB/s times the ratio). */
  diskPages: Rate;
  /** The slowest of readv, compressPool and diskPages: what the dump pipeline can reach. */
  slowest: { name: 'readv' | 'compressPool' | 'disk'; gbps: number };
}

export interface LimitOptions {
  level: number;
  threads?: number;
  /** Bytes of the victim's pages to compress (spread across its region). */
  sampleBytes: number;
  /** Read at least this many bytes in the readv tests (several passes over small victims). */
  minReadBytes: number;
  imagesBase: string;
}

function readvSync(v: Victim, minBytes: number): Rate {
  const iov = MiB;
  const perCall = 16;
  const buf = Buffer.allocUnsafeSlow(iov * perCall);
  const passes = Math.max(1, Math.ceil(minBytes / v.bytes));
  let bytes = 0;
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) {
    for (let off = 0; off < v.bytes; ) {
      const ranges: number[] = [];
      let want = 0;
      for (let k = 0; k < perCall && off < v.bytes; k++) {
        const n = Math.min(iov, v.bytes - off);
        ranges.push(v.addr + off, n);
        off += n;
        want += n;
      }
      const got = native.processVmReadv(v.pid, buf, 0, ranges);
      if (got !== want) throw new Error(`process_vm_readv: ${got} of ${want} bytes`);
      bytes += got;
    }
  }
  return rate(bytes, performance.now() - t0);
}

async function readvAsync(v: Victim, minBytes: number): Promise<Rate> {
  const chunk = 4 * MiB;
  const buf = Buffer.allocUnsafeSlow(chunk);
  const passes = Math.max(1, Math.ceil(minBytes / v.bytes));
  let bytes = 0;
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) {
    for (let off = 0; off < v.bytes; off += chunk) {
      const n = Math.min(chunk, v.bytes - off);
      const got = await native.processVmReadvAsync(v.pid, buf, 0, [v.addr + off, n]);
      if (got !== n) throw new Error(`process_vm_readv: ${got} of ${n} bytes`);
      bytes += got;
    }
  }
  return rate(bytes, performance.now() - t0);
}

/** Batches of the victim's pages (4 MiB, or all of a smaller victim) spread evenly over its region, each its own buffer. */
function sample(v: Victim, sampleBytes: number): Buffer[] {
  const size = Math.min(BATCH, v.bytes);
  const n = Math.max(1, Math.min(Math.floor(v.bytes / size), Math.floor(sampleBytes / size)));
  const stride = Math.floor(v.bytes / size / n) * size;
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const b = Buffer.allocUnsafeSlow(size);
    const got = native.processVmReadv(v.pid, b, 0, [v.addr + i * stride, size]);
    if (got !== size) throw new Error(`process_vm_readv (sample): ${got} of ${size} bytes`);
    out.push(b);
  }
  return out;
}

function compressOneCore(batches: Buffer[], level: number): { rate: Rate; stored: number } {
  const c = newCompressor(level);
  const out = Buffer.allocUnsafe(zstd.compressBound(DEFAULT_FRAME_RAW));
  let stored = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (const b of batches) {
    for (let off = 0; off < b.length; off += DEFAULT_FRAME_RAW) {
      const n = c.compress(out, b.subarray(off, off + DEFAULT_FRAME_RAW));
      crc32(out.subarray(0, n));
      stored += n;
    }
    bytes += b.length;
  }
  return { rate: rate(bytes, performance.now() - t0), stored };
}

/** Feeds the pool as fast as it takes batches (the buffers are transferred away). */
async function compressPool(batches: Buffer[], level: number, threads?: number): Promise<{ rate: Rate; threads: number; out: CompressedBatch[] }> {
  const pool = new CompressPool(level, threads);
  try {
    // Worker start-up is not the compressor's rate: warm every worker first.
    await Promise.all(Array.from({ length: pool.size * 2 }, () => pool.compress(Buffer.alloc(MiB, 7), MiB, DEFAULT_FRAME_RAW)));
    // As many in flight as the dump keeps (PagesWriter: two per worker, plus the one being added).
    const window = pool.size * 2 + 1;
    const inflight: Promise<CompressedBatch>[] = [];
    const out: CompressedBatch[] = [];
    let bytes = 0;
    const t0 = performance.now();
    for (const b of batches) {
      bytes += b.length;
      inflight.push(pool.compress(b, b.length, DEFAULT_FRAME_RAW));
      if (inflight.length >= window) out.push(await inflight.shift()!);
    }
    while (inflight.length) out.push(await inflight.shift()!);
    return { rate: rate(bytes, performance.now() - t0), threads: pool.size, out };
  } finally {
    await pool.close();
  }
}

/** Writes `bytes` of the compressed sample into a file in dir, then fsyncs it. */
function diskWrite(dir: string, blocks: Buffer[], bytes: number): Rate {
  const path = join(dir, `bench-disk-${process.pid}.bin`);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  const fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let done = 0;
  let t0 = 0;
  try {
    t0 = performance.now();
    for (let i = 0; done < bytes; i++) {
      const b = blocks[i % blocks.length]!;
      const n = Math.min(b.length, bytes - done);
      let o = 0;
      while (o < n) o += writeSync(fd, b, o, n - o, done + o);
      done += n;
    }
    fsyncSync(fd);
    return rate(done, performance.now() - t0);
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
}

export async function measureLimits(v: Victim, o: LimitOptions): Promise<Limits> {
  // Best of two for the reads: they are short and the first can meet a cold cache/TLB.
  const readv = [readvSync(v, o.minReadBytes), readvSync(v, o.minReadBytes)].sort((a, b) => b.gbps - a.gbps)[0]!;
  const a1 = await readvAsync(v, o.minReadBytes);
  const a2 = await readvAsync(v, o.minReadBytes);
  const readvAsync4M = a1.gbps > a2.gbps ? a1 : a2;

  // Best of two for the compressor too (the pool consumes its sample: read it again).
  const best = <T extends { rate: Rate }>(a: T, b: T) => (a.rate.gbps >= b.rate.gbps ? a : b);
  let batches = sample(v, o.sampleBytes);
  const sampleBytes = batches.reduce((n, b) => n + b.length, 0);
  const one = best(compressOneCore(batches, o.level), compressOneCore(batches, o.level));
  const ratio = sampleBytes / one.stored;
  const pool1 = await compressPool(batches, o.level, o.threads);
  batches = sample(v, o.sampleBytes);
  const pool = best(pool1, await compressPool(batches, o.level, o.threads));
  batches = [];

  const blocks = pool.out.map((b) => b.data);
  const imageBytes = Math.max(32 * MiB, Math.round(v.bytes / ratio));
  const disk = diskWrite(o.imagesBase, blocks, imageBytes);
  const diskPages = rate(disk.bytes * ratio, disk.ms);

  const candidates: Limits['slowest'][] = [
    { name: 'readv', gbps: readv.gbps },
    { name: 'compressPool', gbps: pool.rate.gbps },
    { name: 'disk', gbps: diskPages.gbps },
  ];
  const slowest = candidates.sort((a, b) => a.gbps - b.gbps)[0]!;
  return {
    readv,
    readvAsync4M,
    compress1: one.rate,
    compressPool: { ...pool.rate, threads: pool.threads },
    ratio,
    sampleBytes,
    disk,
    diskPages,
    slowest,
  };
}
