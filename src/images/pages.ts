// pages-PID.zst (independent zstd frames) and its index pagemap-PID.bin: the sink that the
// dump writes pages into, and the source that restore and the lazy server read from.
import { closeSync, fdatasync, fdatasyncSync, ftruncate, unlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { crc32 } from './crc32.js';
import type { CompressPool, CompressedBatch } from './compress-pool.js';
import { ImageError } from './errors.js';
import { createImageFile, fsyncAsync, writeAll, writeAllAsync, writeError, writeImageFile, type DeferredSyncs } from './io.js';
import { decodePagemap, encodePagemap, PAGE, pagemapSize, RangeKind, type FrameEntry, type PagemapIndex, type PageRangeEntry } from './pagemap.js';
import { sourceOf, type ImageFile, type SetLocation } from './source.js';
import { zstd } from './zstd.js';
import { native } from '../kernel/native.js';
import { SYNC_FILE_RANGE } from '../kernel/syscalls.js';
import type { SyncThread } from './sync-thread.js';

export const pagesFile = (pid: number) => `pages-${pid}.zst`;
export const pagemapFile = (pid: number) => `pagemap-${pid}.bin`;

export const DEFAULT_FRAME_RAW = 64 * 1024;

/** The batch a writer fills before compressing: a whole number of frames, about 1 MiB. */
export const batchBytes = (frameRawSize = DEFAULT_FRAME_RAW) => frameRawSize * Math.max(1, Math.round((1 << 20) / frameRawSize));

const ftruncateAsync = promisify(ftruncate);

/** Bytes written between background fdatasyncs of the pages file (see writeBack). */
const WRITEBACK_EVERY = 32 << 20;
/** The same over a reservation, on a SyncThread (see writeBack). */
const EARLY_SYNC_EVERY = 8 << 20;
/** Batches being written on the libuv pool at once (see writeOldest). */
const MAX_WRITING = 4;
/** The most index memory a reservation makes ahead; a larger index takes fresh memory. */
const MAX_INDEX_MEMORY = 8 << 20;

export interface WriterStats {
  rawBytes: number;
  storedBytes: number;
  frames: number;
}

/**
 * Appends pages in address order. Data is copied into 1 MiB batches (or handed over whole,
 * see addData) that the pool compresses while the caller reads the next pages; frames are
 * written in order.
 */
export class PagesWriter {
  private ranges: PageRangeEntry[] = [];
  private frames: FrameEntry[] = [];
  private batch: Buffer;
  private batchLen = 0;
  private stream = 0;
  /** Page-stream bytes given so far (equals stream once each indexed range has its data). */
  private appended = 0;
  private fileOff = 0;
  private inflight: Promise<CompressedBatch>[] = [];
  /** Batches being written, oldest first (see writeOldest); and the bytes written so far. */
  private writing: Promise<void>[] = [];
  private written = 0;
  private readonly fd: number;
  private lastEnd = 0;
  /** The background fdatasync under way, and the file size it was started at. */
  private syncing: Promise<void> | undefined;
  private syncedTo = 0;
  /** The fsync started by writeFrames, until complete() has it. */
  private finalSync: Promise<void> | undefined;
  private closed = false;
  /** File bytes written ahead as zeros (see reserve). */
  private reserved = 0;
  /** Memory for the index, made with the reservation (see encodePagemap's `into`). */
  private indexMemory: Buffer | undefined;
  /** Where the flushes during a reserved copy run, and the one under way (see writeBack). */
  private syncThread: SyncThread | undefined;
  private early: Promise<void> | undefined;
  /** A whole number of frames, about 1 MiB: every frame but the last is exactly frameRawSize. */
  private readonly batchSize: number;
  /** Pages of the PARENT ranges in the index (see complete). */
  parentPages = 0;

  constructor(
    private readonly dir: string,
    readonly pid: number,
    private readonly pool: CompressPool,
    readonly frameRawSize = DEFAULT_FRAME_RAW,
  ) {
    this.batchSize = batchBytes(frameRawSize);
    this.fd = createImageFile(dir, pagesFile(pid));
    this.batch = pool.buffer(this.batchSize);
  }

  /**
   * Gives the file `bytes` of page cache now, as zeros that the frames will overwrite (writeFrames
   * cuts what is left over): a final dump reserves what it expects to write before it freezes
   * the process, where fresh page cache (first-touch memory, see CompressPool.warm) would
   * make its writes several times slower. The zeros are synced (blocks allocated, on disk):
   * flushes while frozen then write only frames. With a syncThread (see writeBack) that
   * flush runs there, and the promise settles with it (the caller does other work until its
   * freeze); without one, it is done on return.
   */
  reserve(bytes: number, syncThread?: SyncThread): Promise<void> {
    const zeros = Buffer.alloc(Math.min(bytes, 1 << 20));
    try {
      for (let off = this.reserved; off < bytes; off += zeros.length) writeAll(this.fd, zeros.subarray(0, Math.min(zeros.length, bytes - off)), off);
    } catch (e) {
      throw writeError(this.path, e);
    }
    this.reserved = Math.max(this.reserved, bytes);
    // And the index's memory, touched now (see encodePagemap): at most a range of data and
    // one of parent per page, a frame per frameRawSize.
    const pages = Math.ceil(bytes / PAGE);
    this.indexMemory = Buffer.alloc(Math.min(pagemapSize(2 * pages + 2, Math.ceil(bytes / this.frameRawSize) + 1), MAX_INDEX_MEMORY)).fill(0);
    // On disk, blocks allocated: a flush while frozen then writes only the frames (not the
    // zeros ahead of them) and commits no allocation.
    this.syncThread = syncThread;
    if (!syncThread) {
      fdatasyncSync(this.fd);
      return Promise.resolve();
    }
    const synced = syncThread.fdatasync(this.fd);
    // As an early flush: the next one waits for it, and so does closing the fd.
    this.early = synced.then(
      () => (this.early = undefined),
      () => (this.early = undefined),
    );
    return synced;
  }

  private addRange(start: number, nrPages: number, kind: RangeKind): void {
    if (start % PAGE || nrPages <= 0) throw new Error(`pages ${this.pid}: bad range 0x${start.toString(16)}+${nrPages}`);
    if (start < this.lastEnd) throw new Error(`pages ${this.pid}: range 0x${start.toString(16)} added out of order`);
    const last = this.ranges[this.ranges.length - 1];
    if (last && last.kind === kind && last.start + last.nrPages * PAGE === start) last.nrPages += nrPages;
    else this.ranges.push({ start, nrPages, kind, streamOff: kind === RangeKind.Data ? this.stream : 0 });
    this.lastEnd = start + nrPages * PAGE;
  }

  /** The pages file, as errors name it. */
  get path(): string {
    return join(this.dir, pagesFile(this.pid));
  }

  /** A buffer of `size` bytes to read pages into, for addData with handOver (recycled from the compressors). */
  buffer(size: number): Buffer {
    return this.pool.buffer(size);
  }

  /** Gives back a buffer from buffer() that appendStream did not take. */
  giveBack(buf: Buffer): void {
    this.pool.giveBack(buf);
  }

  /**
   * Pages [addr, addr + data.length) hold `data`. With handOver, the caller is done with
   * data's memory: if data fills its whole buffer (as one from buffer() does) with whole
   * frames, and no batch is half full, it goes to a compressor as a batch of its own without
   * a copy (transferred away: the caller's views of that buffer become empty); true then.
   */
  async addData(addr: number, data: Buffer, handOver = false): Promise<boolean> {
    this.addDataRange(addr, data.length);
    return this.appendStream(data, handOver);
  }

  /**
   * Index only: pages [addr, addr + bytes) are the next `bytes` of the page stream, which
   * the caller then gives with appendStream. A batch of scattered pages, read packed into
   * one buffer, is indexed piece by piece and handed over whole.
   */
  addDataRange(addr: number, bytes: number): void {
    this.addRange(addr, bytes / PAGE, RangeKind.Data);
    this.stream += bytes;
  }

  /** The page stream's next bytes (see addData for handOver); true if it took data's buffer. */
  async appendStream(data: Buffer, handOver = false): Promise<boolean> {
    this.appended += data.length;
    const ab = data.buffer as ArrayBuffer;
    if (handOver && this.batchLen === 0 && data.byteOffset === 0 && data.length === ab.byteLength && data.length % this.frameRawSize === 0) {
      this.inflight.push(this.pool.compress(data, data.length, this.frameRawSize));
      await this.bound();
      return true;
    }
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, this.batchSize - this.batchLen);
      data.copy(this.batch, this.batchLen, off, off + n);
      this.batchLen += n;
      off += n;
      if (this.batchLen === this.batchSize) await this.flush();
    }
    return false;
  }

  addZero(addr: number, nrPages: number): void {
    this.addRange(addr, nrPages, RangeKind.Zero);
  }

  private async flush(): Promise<void> {
    if (this.batchLen === 0) return;
    this.inflight.push(this.pool.compress(this.batch, this.batchLen, this.frameRawSize));
    this.batch = this.pool.buffer(this.batchSize);
    this.batchLen = 0;
    await this.bound();
  }

  /** Bounded memory: keep about two batches per worker in flight. */
  private async bound(): Promise<void> {
    while (this.inflight.length > this.pool.size * 2) await this.writeOldest();
  }

  /**
   * The oldest batch, in its place in the file, written on the libuv pool: the copy into the
   * page cache is off the thread that plans, indexes and checksums, which no longer waits on
   * page-cache pressure either (a final dump: a little ahead of writing on the main thread,
   * see the design notes). At most MAX_WRITING at once.
   */
  private async writeOldest(): Promise<void> {
    const b = await this.inflight.shift()!;
    const at = this.fileOff;
    let o = 0;
    for (let i = 0; i < b.sizes.length; i++) {
      this.frames.push({ fileOff: at + o, compSize: b.sizes[i]!, rawSize: b.rawSizes[i]!, crc: b.crcs[i]!, ...(b.stored ? { stored: true } : {}) });
      o += b.sizes[i]!;
    }
    const len = b.data.length;
    this.fileOff += len;
    const w = writeAllAsync(this.fd, b.data, at).then(
      () => {
        this.pool.recycle(b);
        this.written += len;
        this.writeBack(at, len);
      },
      (e: unknown) => {
        throw writeError(this.path, e);
      },
    );
    w.catch(() => {}); // awaited in turn below, or by writeFrames
    this.writing.push(w);
    while (this.writing.length > MAX_WRITING) await this.writing.shift();
  }

  /**
   * Starts writeback early, so that the final fsync does not write the whole file while
   * everything else waits. Over a reservation (a final dump, frozen), each write is sent to
   * the disk at once (sync_file_range: that range only, not the zeros after it, without
   * waiting), and with a SyncThread, what is written so far is flushed from the disk's cache
   * every EARLY_SYNC_EVERY bytes, one flush at a time (the reservation is on disk already,
   * so that writes back only frames); otherwise an fdatasync in the background (libuv pool)
   * every WRITEBACK_EVERY bytes, one at a time. Only the final fsync decides durability (and
   * reports errors).
   */
  private writeBack(at: number, len: number): void {
    if (this.reserved) {
      try {
        native.syncFileRange(this.fd, at, len, SYNC_FILE_RANGE.WRITE);
      } catch {
        /* only a head start: the final fsync writes it anyway, and reports what fails */
      }
      const t = this.syncThread;
      if (!t || this.early || this.written - this.syncedTo < EARLY_SYNC_EVERY) return;
      this.syncedTo = this.written;
      // Also only a head start (errors are the final fsync's to report).
      this.early = t.fdatasync(this.fd).then(
        () => (this.early = undefined),
        () => (this.early = undefined),
      );
      return;
    }
    if (this.syncing || this.written - this.syncedTo < WRITEBACK_EVERY) return;
    this.syncedTo = this.written;
    this.syncing = new Promise<void>((resolve) =>
      fdatasync(this.fd, () => {
        this.syncing = undefined;
        resolve();
      }),
    );
  }

  /** Writes the remaining frames and the index, fsyncs both. */
  async finish(): Promise<WriterStats> {
    const stats = await this.writeFrames();
    await this.complete();
    return stats;
  }

  /**
   * Writes the remaining frames and starts the fsync of the pages file on the libuv pool;
   * complete() waits for it and writes the index. A final dump collects the rest of the
   * process state in between, while the disk works.
   */
  async writeFrames(): Promise<WriterStats> {
    if (this.appended !== this.stream) throw new Error(`pages ${this.pid}: ${this.stream} bytes indexed but ${this.appended} given`);
    await this.flush();
    while (this.inflight.length) await this.writeOldest();
    while (this.writing.length) await this.writing.shift();
    await this.syncing;
    // What is left of a reservation is cut on the pool, then the file synced: the cut frees
    // blocks the reservation allocated (several ms of journal work on the main thread, while
    // frozen, when it was synchronous).
    const cut = this.reserved > this.fileOff ? ftruncateAsync(this.fd, this.fileOff) : Promise.resolve();
    this.finalSync = cut.then(() => fsyncAsync(this.fd)).catch((e: unknown) => {
      throw writeError(this.path, e);
    });
    this.finalSync.catch(() => {}); // complete() reports it
    return { rawBytes: this.stream, storedBytes: this.fileOff, frames: this.frames.length };
  }

  /**
   * Writes the index and waits for the pages file to be on disk; the index is synced too, or
   * with `syncs` left to the caller's flush (together with the set's other small files).
   * `parents` gives the PARENT ranges (sorted, disjoint from the data), asked for here: a
   * final dump works them out only once the process runs again (see PassPlan.parentSlices).
   */
  async complete(syncs?: DeferredSyncs, parents?: () => Array<{ start: number; end: number }>): Promise<void> {
    const sync = this.finalSync;
    if (!sync) throw new Error(`pages ${this.pid}: complete() before writeFrames()`);
    this.finalSync = undefined;
    this.closed = true; // ours to close from here (abort() leaves it alone)
    try {
      if (parents) this.ranges = this.withParents(parents());
      const index: PagemapIndex = {
        frameRawSize: this.frameRawSize,
        ranges: this.ranges,
        frames: this.frames,
        pagesBytes: this.fileOff,
        rawBytes: this.stream,
      };
      writeImageFile(this.dir, pagemapFile(this.pid), encodePagemap(index, this.indexMemory), syncs);
    } finally {
      // Closed only once its fsyncs are over, even if the index failed: the fd stays ours until then.
      try {
        await sync;
      } finally {
        await this.early;
        closeSync(this.fd);
      }
    }
  }

  /** The index's ranges with `parents` (sorted, disjoint from them) in their places. */
  private withParents(parents: Array<{ start: number; end: number }>): PageRangeEntry[] {
    const out: PageRangeEntry[] = [];
    const end = (r: PageRangeEntry) => r.start + r.nrPages * PAGE;
    let i = 0;
    for (const p of parents) {
      while (i < this.ranges.length && this.ranges[i]!.start < p.start) out.push(this.ranges[i++]!);
      const before = out[out.length - 1];
      const after = this.ranges[i];
      if (p.end <= p.start || p.start % PAGE || p.end % PAGE || (before && end(before) > p.start) || (after && after.start < p.end)) {
        throw new Error(`pages ${this.pid}: parent range 0x${p.start.toString(16)}-0x${p.end.toString(16)} is empty, unaligned or overlaps`);
      }
      const nrPages = (p.end - p.start) / PAGE;
      this.parentPages += nrPages;
      if (before?.kind === RangeKind.Parent && end(before) === p.start) before.nrPages += nrPages;
      else out.push({ start: p.start, nrPages, kind: RangeKind.Parent, streamOff: 0 });
    }
    while (i < this.ranges.length) out.push(this.ranges[i++]!);
    return out;
  }

  /** Closes and removes the file of a writer that was never used. */
  discard(): void {
    this.abort();
    try {
      unlinkSync(join(this.dir, pagesFile(this.pid)));
    } catch {
      /* already gone */
    }
  }

  /** Closes the file after a failure (the set is incomplete anyway: no inventory). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    const close = () => {
      try {
        closeSync(this.fd);
      } catch {
        /* already closed */
      }
    };
    // An fsync under way still uses the fd: close it when those are done.
    const busy = [this.finalSync, this.early, ...this.writing].filter((p) => p !== undefined);
    if (busy.length) void Promise.allSettled(busy).then(close);
    else close();
  }
}

/** Random access to one process's pages in one set: any frame is read and checked alone. */
export class PagesReader {
  private cache = new Map<number, Buffer>();
  private readonly dctx = new zstd.DCtx();
  private compBuf = Buffer.alloc(0);

  private constructor(
    private readonly file: ImageFile,
    readonly index: PagemapIndex,
    private readonly cacheFrames: number,
  ) {}

  /** The pages file as errors name it. */
  get path(): string {
    return this.file.path;
  }

  /** From a directory or any image source (an archive read in place). */
  static open(from: SetLocation, pid: number, cacheFrames = 64): PagesReader {
    const src = sourceOf(from);
    const index = decodePagemap(src.readFile(pagemapFile(pid)), src.path(pagemapFile(pid)));
    const file = src.open(pagesFile(pid));
    if (file.size !== index.pagesBytes) {
      file.close();
      throw new ImageError(file.path, `${file.size < index.pagesBytes ? 'truncated' : 'has trailing data'}: ${file.size} bytes, the index expects ${index.pagesBytes}`);
    }
    return new PagesReader(file, index, cacheFrames);
  }

  /** The decompressed frame i (checked against its CRC, and zstd's content checksum unless stored). */
  frame(i: number): Buffer {
    const hit = this.cache.get(i);
    if (hit) {
      this.cache.delete(i);
      this.cache.set(i, hit);
      return hit;
    }
    const f = this.index.frameAt ? this.index.frameAt(i) : this.index.frames[i];
    if (!f) throw new ImageError(this.path, `frame ${i} does not exist (the index has ${this.index.frames.length})`);
    // A full cache gives its oldest buffer to the new frame: a lazy server reads thousands of
    // frames a second, and a fresh 64 KiB Buffer for each keeps the GC busy half the time.
    // (A frame Buffer is valid until the next frame() call: callers copy out of it at once.)
    let raw: Buffer | undefined;
    if (this.cache.size >= this.cacheFrames) {
      const oldest = this.cache.keys().next().value!;
      const b = this.cache.get(oldest)!;
      this.cache.delete(oldest);
      if (b.length === f.rawSize) raw = b;
    }
    raw ??= Buffer.allocUnsafe(f.rawSize);
    // A stored frame is read straight into its place; a compressed one through compBuf.
    if (!f.stored && this.compBuf.length < f.compSize) this.compBuf = Buffer.allocUnsafe(Math.max(f.compSize, 128 * 1024));
    const comp = f.stored ? raw : this.compBuf.subarray(0, f.compSize);
    this.file.pread(comp, 0, f.compSize, f.fileOff);
    if (crc32(comp) !== f.crc) throw new ImageError(this.path, `frame ${i} at offset ${f.fileOff}: checksum mismatch (damaged)`);
    if (!f.stored) {
      let n: number;
      try {
        n = this.dctx.decompress(raw, comp);
      } catch (e) {
        throw new ImageError(this.path, `frame ${i} at offset ${f.fileOff}: cannot decompress (${(e as Error).message})`, { cause: e });
      }
      if (n !== f.rawSize) throw new ImageError(this.path, `frame ${i}: decompressed to ${n} bytes, expected ${f.rawSize}`);
    }
    this.cache.set(i, raw);
    return raw;
  }

  /** Copies page-stream bytes [off, off+len) into out at outOff. */
  readStream(off: number, len: number, out: Buffer, outOff: number): void {
    const fr = this.index.frameRawSize;
    while (len > 0) {
      const i = Math.floor(off / fr);
      const within = off - i * fr;
      const f = this.frame(i);
      const n = Math.min(len, f.length - within);
      if (n <= 0) throw new ImageError(this.path, `page data at stream offset ${off} is past the last frame`);
      f.copy(out, outOff, within, within + n);
      off += n;
      outOff += n;
      len -= n;
    }
  }

  /** Frame numbers covering stream bytes [off, off+len). */
  framesFor(off: number, len: number): [number, number] {
    const fr = this.index.frameRawSize;
    return [Math.floor(off / fr), Math.floor((off + len - 1) / fr)];
  }

  close(): void {
    this.file.close();
    this.cache.clear();
  }
}
