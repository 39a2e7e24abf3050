// pagemap-PID.bin: the page index of one process in one image set.
//
//   header (64 bytes)  magic "CRTSPMAP", version, page size, frame size, counts, CRCs
//   ranges (32 bytes each, sorted, disjoint): start, nrPages, kind, streamOff
//   frames (24 bytes each): fileOff, compSize, rawSize, crc32 of the stored bytes, flags
//
// A DATA range's pages sit in the set's page stream at streamOff; the stream is cut into
// frames of frameRawSize bytes (the last may be shorter), each one independent zstd frame
// in pages-PID.zst, so any page is found with one division and read with one frame.
// A frame flagged STORED holds its pages as they are (compression level 0: the final dump
// of a tracked chain, whose copy is downtime); its CRC is then the only check.
// PARENT: the page is unchanged since the parent set (pre-dump chains). ZERO: reads as zero.
// Pages of a VMA in no range were never present: fresh memory (or the file's content).
import { crc32 } from './crc32.js';
import { ImageError } from './errors.js';

export const PAGE = 4096;
export const MAGIC = 'CRTSPMAP';
/** Version 2 added frame flags (STORED); version 1 indexes (flags always 0) are still read. */
export const PAGEMAP_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
/** Frame flags. */
export const FRAME_STORED = 1;
export const HEADER_SIZE = 64;
export const RANGE_SIZE = 32;
export const FRAME_SIZE = 24;

export const enum RangeKind {
  Data = 0,
  Parent = 1,
  Zero = 2,
}

export interface PageRangeEntry {
  start: number;
  nrPages: number;
  kind: RangeKind;
  /** Byte offset in the page stream (Data only). */
  streamOff: number;
}

export interface FrameEntry {
  fileOff: number;
  compSize: number;
  rawSize: number;
  crc: number;
  /** The frame's bytes are the pages themselves (no zstd). */
  stored?: boolean;
}

/** A decoded index's ranges in typed arrays: read without an object per range (see decodePagemap). */
export interface RangeSpans {
  start: Float64Array;
  /** start + nrPages * PAGE. */
  end: Float64Array;
  kind: Uint8Array;
  streamOff: Float64Array;
}

export interface PagemapIndex {
  frameRawSize: number;
  ranges: PageRangeEntry[];
  /** The ranges as typed arrays (a decoded index has them; `ranges` is then built on first use). */
  spans?: RangeSpans;
  frames: FrameEntry[];
  /**
   * Frame i straight from the index file, checked on its own (a decoded index has it): the
   * page reader needs one frame at a time, and a restore must not wait for the whole table
   * (tens of thousands of entries per GiB) before the process runs.
   */
  frameAt?: (i: number) => FrameEntry;
  /** Size of pages-PID.zst. */
  pagesBytes: number;
  /** Length of the page stream (sum of Data ranges). */
  rawBytes: number;
}

/** 64-bit little-endian fields as plain numbers: BigInt reads cost more than all the rest. */
function read64(buf: Buffer, o: number): number {
  return buf.readUInt32LE(o) + buf.readUInt32LE(o + 4) * 0x100000000;
}

/** Bytes of the encoded index. */
export const pagemapSize = (nrRanges: number, nrFrames: number) => HEADER_SIZE + nrRanges * RANGE_SIZE + nrFrames * FRAME_SIZE;

/**
 * The index file's bytes; in `into` if it is large enough (every byte is written: memory
 * touched ahead, as a final dump's writer keeps one, spares the page faults of fresh
 * memory while the process is frozen, about 2 ms for 20k ranges on this VM).
 */
export function encodePagemap(ix: PagemapIndex, into?: Buffer): Buffer {
  const size = pagemapSize(ix.ranges.length, ix.frames.length);
  const buf = into && into.length >= size && into.byteOffset % 4 === 0 ? into.subarray(0, size) : Buffer.alloc(size);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(PAGEMAP_VERSION, 8);
  buf.writeUInt32LE(PAGE, 12);
  buf.writeUInt32LE(ix.frameRawSize, 16);
  buf.writeUInt32LE(0, 20);
  buf.writeBigUInt64LE(BigInt(ix.ranges.length), 24);
  buf.writeBigUInt64LE(BigInt(ix.frames.length), 32);
  buf.writeBigUInt64LE(BigInt(ix.pagesBytes), 40);
  buf.writeBigUInt64LE(BigInt(ix.rawBytes), 48);
  // The body through a Uint32Array, as decode reads it: a final dump writes its index while
  // the process is frozen, and per-field Buffer/BigInt writes cost tens of ms per 100k ranges.
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >> 2);
  const HI = 0x100000000;
  const put64 = (w: number, v: number) => {
    u32[w] = v % HI;
    u32[w + 1] = Math.floor(v / HI);
  };
  let w = HEADER_SIZE / 4;
  for (const r of ix.ranges) {
    put64(w, r.start);
    put64(w + 2, r.nrPages);
    u32[w + 4] = r.kind;
    u32[w + 5] = 0;
    put64(w + 6, r.streamOff);
    w += RANGE_SIZE / 4;
  }
  for (const f of ix.frames) {
    put64(w, f.fileOff);
    u32[w + 2] = f.compSize;
    u32[w + 3] = f.rawSize;
    u32[w + 4] = f.crc;
    u32[w + 5] = f.stored ? FRAME_STORED : 0;
    w += FRAME_SIZE / 4;
  }
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_SIZE)), 56);
  buf.writeUInt32LE(crc32(buf.subarray(0, 60)), 60);
  return buf;
}

/** Parses and validates an index; every inconsistency is an ImageError naming `path`. */
export function decodePagemap(buf: Buffer, path: string): PagemapIndex {
  const bad = (what: string): never => {
    throw new ImageError(path, what);
  };
  if (buf.length < HEADER_SIZE) bad(`truncated: ${buf.length} bytes, a header needs ${HEADER_SIZE}`);
  if (buf.toString('latin1', 0, 8) !== MAGIC) bad('not a criu-ts page index (bad magic)');
  const version = buf.readUInt32LE(8);
  if (!READABLE_VERSIONS.includes(version)) bad(`index format version ${version} is not supported (this tool reads ${READABLE_VERSIONS.join(' and ')})`);
  if (buf.readUInt32LE(60) !== crc32(buf.subarray(0, 60))) bad('header checksum mismatch (damaged)');
  if (buf.readUInt32LE(12) !== PAGE) bad(`page size ${buf.readUInt32LE(12)} is not ${PAGE}`);
  const frameRawSize = buf.readUInt32LE(16);
  if (frameRawSize === 0 || frameRawSize % PAGE) bad(`frame size ${frameRawSize} is not a multiple of the page size`);
  const nrRanges = read64(buf, 24);
  const nrFrames = read64(buf, 32);
  const pagesBytes = read64(buf, 40);
  const rawBytes = read64(buf, 48);
  const want = HEADER_SIZE + nrRanges * RANGE_SIZE + nrFrames * FRAME_SIZE;
  if (buf.length !== want) bad(`${buf.length < want ? 'truncated' : 'trailing data'}: ${buf.length} bytes, the header promises ${want}`);
  if (buf.readUInt32LE(56) !== crc32(buf.subarray(HEADER_SIZE))) bad('checksum mismatch in the ranges or frames (damaged)');

  // The body through a Uint32Array: element reads cost far less than Buffer method calls,
  // and a restore decodes every index before the process runs (tens of thousands of entries).
  // Checked and kept in typed arrays: an object (and a boxed address) per range kept the
  // collector busy for most of a decode, 44-135 ms for 73k ranges in a fresh process (a
  // chain's final dump decodes its parent's index just before the freeze).
  const aligned = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
  const u32 = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length >> 2);
  const HI = 0x100000000;
  const spans: RangeSpans = { start: new Float64Array(nrRanges), end: new Float64Array(nrRanges), kind: new Uint8Array(nrRanges), streamOff: new Float64Array(nrRanges) };
  let w = HEADER_SIZE / 4;
  let prevEnd = 0;
  let stream = 0;
  for (let i = 0; i < nrRanges; i++, w += RANGE_SIZE / 4) {
    const start = u32[w]! + u32[w + 1]! * HI;
    const nrPages = u32[w + 2]! + u32[w + 3]! * HI;
    const kind = u32[w + 4]!;
    const streamOff = u32[w + 6]! + u32[w + 7]! * HI;
    if (start % PAGE || nrPages <= 0) bad(`range ${i}: not page aligned or empty`);
    if (start < prevEnd) bad(`range ${i}: overlaps or is out of order`);
    if (kind > RangeKind.Zero) bad(`range ${i}: unknown kind ${kind}`);
    if (kind === RangeKind.Data) {
      if (streamOff !== stream) bad(`range ${i}: stream offset ${streamOff}, expected ${stream}`);
      stream += nrPages * PAGE;
      if (stream > rawBytes) bad(`range ${i}: points past the end of the page data (${stream} > ${rawBytes})`);
    }
    prevEnd = start + nrPages * PAGE;
    spans.start[i] = start;
    spans.end[i] = prevEnd;
    spans.kind[i] = kind;
    spans.streamOff[i] = streamOff;
  }
  if (stream !== rawBytes) bad(`ranges hold ${stream} bytes of page data, the header says ${rawBytes}`);
  // Range objects for the readers that want them (restore, show), made on first use.
  let rangeList: PageRangeEntry[] | undefined;
  const decodeRanges = (): PageRangeEntry[] => {
    if (rangeList) return rangeList;
    const out: PageRangeEntry[] = new Array(nrRanges);
    for (let i = 0; i < nrRanges; i++) {
      const kind = spans.kind[i]! as RangeKind;
      out[i] = { start: spans.start[i]!, nrPages: (spans.end[i]! - spans.start[i]!) / PAGE, kind, streamOff: spans.streamOff[i]! };
    }
    rangeList = out;
    return out;
  };

  const framesBase = w;
  const frameEntry = (v: number, i: number): FrameEntry => {
    const flags = u32[v + 5]!;
    if (flags & ~FRAME_STORED || (flags && version < 2)) bad(`frame ${i}: unknown flags 0x${flags.toString(16)}`);
    const f: FrameEntry = { fileOff: u32[v]! + u32[v + 1]! * HI, compSize: u32[v + 2]!, rawSize: u32[v + 3]!, crc: u32[v + 4]! };
    if (flags & FRAME_STORED) {
      if (f.compSize !== f.rawSize) bad(`frame ${i}: stored, but ${f.compSize} bytes hold ${f.rawSize}`);
      f.stored = true;
    }
    return f;
  };
  // The whole table, checked as one (offsets follow each other, sizes add up): built on first use.
  let table: FrameEntry[] | undefined;
  const decodeFrames = (): FrameEntry[] => {
    if (table) return table;
    let w = framesBase;
    const frames: FrameEntry[] = new Array(nrFrames);
    let fileOff = 0;
    let raw = 0;
    for (let i = 0; i < nrFrames; i++, w += FRAME_SIZE / 4) {
      const f = frameEntry(w, i);
      if (f.fileOff !== fileOff) bad(`frame ${i}: file offset ${f.fileOff}, expected ${fileOff}`);
      if (f.rawSize !== Math.min(frameRawSize, rawBytes - raw) || f.rawSize <= 0) bad(`frame ${i}: raw size ${f.rawSize} does not fit the page data`);
      fileOff += f.compSize;
      raw += f.rawSize;
      frames[i] = f;
    }
    if (raw !== rawBytes) bad(`frames hold ${raw} bytes of page data, the ranges ${rawBytes}`);
    if (fileOff !== pagesBytes) bad(`frames end at ${fileOff}, the header says the page file has ${pagesBytes} bytes`);
    table = frames;
    return frames;
  };
  const frameAt = (i: number): FrameEntry => {
    if (!Number.isInteger(i) || i < 0 || i >= nrFrames) bad(`frame ${i} does not exist (the index has ${nrFrames})`);
    const v = framesBase + i * (FRAME_SIZE / 4);
    const f = frameEntry(v, i);
    const rawWant = i === nrFrames - 1 ? rawBytes - i * frameRawSize : frameRawSize;
    if (f.rawSize !== rawWant || f.fileOff + f.compSize > pagesBytes) bad(`frame ${i}: does not fit the page data or the page file`);
    return f;
  };
  const index = { frameRawSize, spans, pagesBytes, rawBytes, frameAt } as PagemapIndex;
  Object.defineProperty(index, 'ranges', { get: decodeRanges, enumerable: true });
  Object.defineProperty(index, 'frames', { get: decodeFrames, set: (v: FrameEntry[]) => (table = v), enumerable: true });
  return index;
}

/** Index of the range containing addr, or -1. */
export function findRange(ranges: PageRangeEntry[], addr: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (addr < r.start) hi = mid - 1;
    else if (addr >= r.start + r.nrPages * PAGE) lo = mid + 1;
    else return mid;
  }
  return -1;
}

const madeSpans = new WeakMap<PagemapIndex, RangeSpans>();

/** An index's ranges as typed arrays: a decoded index's own, else made once from its range objects. */
export function spansOf(ix: PagemapIndex): RangeSpans {
  if (ix.spans) return ix.spans;
  let s = madeSpans.get(ix);
  if (!s) {
    const n = ix.ranges.length;
    s = { start: new Float64Array(n), end: new Float64Array(n), kind: new Uint8Array(n), streamOff: new Float64Array(n) };
    ix.ranges.forEach((r, i) => {
      s!.start[i] = r.start;
      s!.end[i] = r.start + r.nrPages * PAGE;
      s!.kind[i] = r.kind;
      s!.streamOff[i] = r.streamOff;
    });
    madeSpans.set(ix, s);
  }
  return s;
}

/** Index of the first span ending after addr (its length if none); spans sorted and disjoint. */
export function firstSpanAfter(spans: Pick<RangeSpans, 'end'>, addr: number): number {
  let lo = 0;
  let hi = spans.end.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans.end[mid]! <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
