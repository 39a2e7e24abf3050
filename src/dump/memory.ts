// The page copy pipeline: process_vm_readv copies the planned pages in large batches (the
// next batch is read while the last one is handed to the compressors), and the PagesWriter
// (the sink) compresses and writes frames.
//
// While the process runs (pre-dump), a VMA may vanish under us: the read comes back short.
// Such pages are simply not saved (the next pass or the final dump sees the new layout);
// while it is frozen, a short read is an error.
import { closeSync, openSync, readSync } from 'node:fs';
import { native } from '../kernel/native.js';
import type { PagesWriter } from '../images/pages.js';
import { CriuError } from '../errors.js';
import type { Item } from './plan.js';

/** Bytes per process_vm_readv (and per buffer handed to the writer). */
export const COPY_CHUNK = 4 << 20;
const IOV_MAX = 1024;
const READ_AHEAD = 2;

export interface Chunk {
  pieces: Item[];
  bytes: number;
}

/**
 * Cuts data items into chunks of at most COPY_CHUNK bytes and IOV_MAX pieces. A chunk cut at
 * IOV_MAX pieces gives its last pages to the next one so that it stays a whole number of
 * `align` bytes (the writer's frame size): such a chunk goes to the writer without a copy.
 */
export class Chunker {
  private cur: Chunk = { pieces: [], bytes: 0 };

  constructor(private readonly align: number) {}

  /** The chunks that item p completes. */
  push(p: Item): Chunk[] {
    const out: Chunk[] = [];
    let s = p.start;
    while (s < p.end) {
      const n = Math.min(p.end - s, COPY_CHUNK - this.cur.bytes);
      this.cur.pieces.push({ start: s, end: s + n, readable: p.readable });
      this.cur.bytes += n;
      s += n;
      if (this.cur.bytes === COPY_CHUNK || this.cur.pieces.length === IOV_MAX) out.push(this.cut());
    }
    return out;
  }

  /** The last, partly filled chunk, if any. */
  end(): Chunk | undefined {
    const last = this.cur;
    this.cur = { pieces: [], bytes: 0 };
    return last.bytes ? last : undefined;
  }

  private cut(): Chunk {
    const out = this.cur;
    this.cur = { pieces: [], bytes: 0 };
    let excess = out.bytes % this.align;
    const carried: Item[] = [];
    while (excess > 0) {
      const last = out.pieces[out.pieces.length - 1]!;
      const n = Math.min(excess, last.end - last.start);
      carried.unshift({ ...last, start: last.end - n });
      last.end -= n;
      if (last.end === last.start) out.pieces.pop();
      out.bytes -= n;
      excess -= n;
    }
    for (const c of carried) {
      this.cur.pieces.push(c);
      this.cur.bytes += c.end - c.start;
    }
    return out;
  }
}

/**
 * Planned items handed from a plan still scanning to the copy, in address order: the copy
 * of the first pages (and the disk behind it) starts while the rest is being found.
 */
export class ItemStream {
  private items: Item[] = [];
  private ended = false;
  private error: { e: unknown } | undefined;
  private waiter: (() => void) | undefined;
  /** Bytes of items pushed so far. */
  dataBytes = 0;

  static of(items: Item[]): ItemStream {
    const s = new ItemStream();
    s.push(items);
    s.end();
    return s;
  }

  push(items: Item[]): void {
    for (const it of items) {
      this.items.push(it);
      this.dataBytes += it.end - it.start;
    }
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** The plan failed: the copy's next take() throws its error. */
  fail(e: unknown): void {
    this.error ??= { e };
    this.wake();
  }

  /** Every item pushed since the last take (the plan's error, if it failed). */
  take(): Item[] {
    if (this.error) throw this.error.e;
    const out = this.items;
    this.items = [];
    return out;
  }

  /** No more items will come (take() then returns what is left, once). */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Resolves once there is something new to take, or the stream ended or failed. */
  wait(): Promise<void> {
    if (this.items.length || this.ended || this.error) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

interface ReadChunk {
  buf: Buffer;
  /** Bytes actually read of each piece (less than its length where it vanished), or 'all'. */
  got: number[] | 'all';
}

function preadMem(fd: number, buf: Buffer, off: number, at: number, len: number): number {
  let done = 0;
  while (done < len) {
    let n: number;
    try {
      n = readSync(fd, buf, off + done, len - done, at + done);
    } catch {
      n = 0;
    }
    if (n <= 0) break;
    done += n;
  }
  return done;
}

/** Reads one chunk: process_vm_readv for the readable pieces, /proc/PID/mem for the rest. */
async function readChunk(pid: number, memFd: () => number, c: Chunk, buf: Buffer): Promise<ReadChunk> {
  // A typed array: the native side reads it in one go (an Array costs it calls per number).
  const ranges = new Float64Array(c.pieces.length * 2);
  let n = 0;
  for (const p of c.pieces) {
    if (!p.readable) continue;
    ranges[n++] = p.start;
    ranges[n++] = p.end - p.start;
  }
  let fast = n ? await native.processVmReadvAsync(pid, buf, 0, ranges.subarray(0, n)) : 0;
  // The usual case: every piece readable and read whole, packed in order.
  if (fast === c.bytes) return { buf, got: 'all' };
  const got = c.pieces.map(() => 0);
  // process_vm_readv fills the readable pieces in order, contiguously from offset 0; move
  // them to their places (after the unreadable ones) as we account for them, from the back.
  const placed: Array<[number, number]> = [];
  let off = 0;
  for (let i = 0; i < c.pieces.length; i++) {
    const p = c.pieces[i]!;
    const len = p.end - p.start;
    if (p.readable) {
      const n = Math.min(fast, len);
      got[i] = n;
      fast -= n;
      placed.push([i, off]);
    }
    off += len;
  }
  // Readable pieces sit packed at the start; spread them out (right to left, no overlap issue).
  let packedEnd = placed.reduce((s, [i]) => s + (c.pieces[i]!.end - c.pieces[i]!.start), 0);
  for (let k = placed.length - 1; k >= 0; k--) {
    const [i, to] = placed[k]!;
    const len = c.pieces[i]!.end - c.pieces[i]!.start;
    packedEnd -= len;
    if (packedEnd !== to) buf.copy(buf, to, packedEnd, packedEnd + len);
  }
  off = 0;
  for (let i = 0; i < c.pieces.length; i++) {
    const p = c.pieces[i]!;
    const len = p.end - p.start;
    // Unreadable pieces, and whatever process_vm_readv refused (a VM_IO page, a vanished
    // VMA), go through /proc/PID/mem, which reads through any protection.
    if (got[i]! < len) got[i] = got[i]! + preadMem(memFd(), buf, off + got[i]!, p.start + got[i]!, len - got[i]!);
    off += len;
  }
  return { buf, got };
}

export interface CopyStats {
  bytesRead: number;
  /** Bytes planned but gone when read (running process only). */
  bytesVanished: number;
}

/**
 * Copies the planned items of pid into the writer, reading ahead; onCopied hears the bytes so
 * far. The items may still be coming (the stream of a plan under way).
 */
export async function copyPages(pid: number, stream: ItemStream, writer: PagesWriter, frozen: boolean, onCopied?: (bytes: number) => void): Promise<CopyStats> {
  let mem = -1;
  const memFd = () => (mem >= 0 ? mem : (mem = openSync(`/proc/${pid}/mem`, 'r')));
  let bytesRead = 0;
  let bytesVanished = 0;
  try {
    const chunker = new Chunker(writer.frameRawSize);
    const ready: Chunk[] = [];
    let allTaken = false;
    // Whatever the plan has found so far, as chunks (the last, partial one once it is done).
    const take = () => {
      if (allTaken) return;
      const ended = stream.isEnded;
      for (const it of stream.take()) for (const c of chunker.push(it)) ready.push(c);
      if (ended) {
        allTaken = true;
        const last = chunker.end();
        if (last) ready.push(last);
      }
    };
    const start = (c: Chunk) => {
      // A buffer from the writer: a chunk read as one piece goes to a compressor without a
      // copy. A short one (the last) is read into a full-sized buffer, which is warm (see
      // CompressPool.warm), then copied: a fresh buffer would be faulted in page by page.
      const buf = writer.buffer(COPY_CHUNK);
      const p = readChunk(pid, memFd, c, c.bytes === COPY_CHUNK ? buf : buf.subarray(0, c.bytes));
      p.catch(() => {}); // awaited below; this only keeps a failure from going unhandled meanwhile
      return p;
    };
    // Two reads in flight: process_vm_readv of scattered pages is kernel time (page-table
    // lookups, pinning), which a second pool thread spreads over another core.
    const reads: Array<{ chunk: Chunk; read: Promise<ReadChunk> }> = [];
    const readAhead = () => {
      take();
      while (reads.length < READ_AHEAD && ready.length) {
        const c = ready.shift()!;
        reads.push({ chunk: c, read: start(c) });
      }
    };
    for (;;) {
      readAhead();
      // Nothing to read yet: wait for the plan (only then, so that reads in flight go on).
      while (!reads.length && !allTaken) {
        await stream.wait();
        readAhead();
      }
      if (!reads.length) break;
      const { chunk, read } = reads.shift()!;
      const { buf, got } = await read;
      readAhead();
      if (got === 'all') {
        // Index each piece, then hand the packed buffer over whole: no copy, one await.
        for (const p of chunk.pieces) writer.addDataRange(p.start, p.end - p.start);
        if (!(await writer.appendStream(buf.subarray(0, chunk.bytes), true))) writer.giveBack(buf);
        bytesRead += chunk.bytes;
        onCopied?.(bytesRead);
        continue;
      }
      let off = 0;
      let taken = false;
      for (let i = 0; i < chunk.pieces.length; i++) {
        const p = chunk.pieces[i]!;
        const len = p.end - p.start;
        const n = got[i]! - (got[i]! % 4096);
        if (n < len) {
          if (frozen) throw new CriuError('EIO', `pid ${pid}: cannot read memory at 0x${(p.start + n).toString(16)}`);
          bytesVanished += len - n;
        }
        if (n > 0 && (await writer.addData(p.start, buf.subarray(off, off + n), true))) taken = true;
        off += len;
        bytesRead += n;
      }
      // Back to the pool unless a piece took the whole buffer (then it is gone from here).
      if (!taken) writer.giveBack(buf);
      onCopied?.(bytesRead);
    }
  } finally {
    if (mem >= 0) closeSync(mem);
  }
  return { bytesRead, bytesVanished };
}
