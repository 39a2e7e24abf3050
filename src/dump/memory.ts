// The page copy pipeline: PAGEMAP_SCAN decides which pages to save, process_vm_readv
// copies them in large batches (the next batch is read while the last one is handed to
// the compressors), and the PagesWriter (the sink) compresses and writes frames.
import { closeSync, openSync, readSync } from 'node:fs';
import { native } from '../kernel/native.js';
import { openPagemap, scanFd, type PageRange } from '../kernel/pagemap.js';
import { PAGE_IS } from '../kernel/syscalls.js';
import { addr, type Vma } from '../images/mm.js';
import type { PagesWriter } from '../images/pages.js';
import { CriuError } from '../errors.js';

const CHUNK = 4 << 20;
const IOV_MAX = 1024;

export type SaveRule = 'skip' | 'anon' | 'cow' | 'whole';

/** What to save of a VMA: the page data that a fresh mapping at restore would not have. */
export function saveRule(v: Vma): SaveRule {
  switch (v.kind) {
    case 'vdso':
    case 'vvar':
    case 'vvar_vclock':
    case 'vsyscall':
      return 'skip'; // the kernel's own, moved into place at restore
    case 'file':
      // Shared file pages live in the file; private ones only where written (COW).
      return v.shared ? 'skip' : 'cow';
    case 'file-deleted':
      return 'whole';
    case 'anon':
      return 'anon';
  }
}

export interface Piece {
  start: number;
  end: number;
  /** Readable with process_vm_readv (PROT_READ); else /proc/PID/mem is used. */
  readable: boolean;
}

/** The page ranges to save, in address order. */
export function pagesToSave(pid: number, vmas: Vma[]): Piece[] {
  const fd = openPagemap(pid);
  try {
    const out: Piece[] = [];
    for (const v of vmas) {
      const rule = saveRule(v);
      if (rule === 'skip') continue;
      const start = addr(v.start);
      const end = addr(v.end);
      const readable = (v.prot & 1) !== 0;
      if (rule === 'whole') {
        out.push({ start, end, readable });
        continue;
      }
      // Zero-page mappings read as zero anyway; page-cache pages of a private file
      // mapping come back from the file. Everything else present or swapped is data.
      const exclude = PAGE_IS.PFNZERO | (rule === 'cow' ? PAGE_IS.FILE : 0);
      const ranges: PageRange[] = scanFd(fd, {
        start,
        end,
        categoryInverted: exclude,
        categoryMask: exclude,
        categoryAnyofMask: PAGE_IS.PRESENT | PAGE_IS.SWAPPED,
        returnMask: PAGE_IS.PRESENT | PAGE_IS.SWAPPED,
      });
      for (const r of ranges) out.push({ start: r.start, end: r.end, readable });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

interface Chunk {
  pieces: Piece[];
  bytes: number;
}

function* chunks(pieces: Piece[]): Generator<Chunk> {
  let cur: Chunk = { pieces: [], bytes: 0 };
  for (const p of pieces) {
    let s = p.start;
    while (s < p.end) {
      const n = Math.min(p.end - s, CHUNK - cur.bytes);
      cur.pieces.push({ start: s, end: s + n, readable: p.readable });
      cur.bytes += n;
      s += n;
      if (cur.bytes === CHUNK || cur.pieces.length === IOV_MAX) {
        yield cur;
        cur = { pieces: [], bytes: 0 };
      }
    }
  }
  if (cur.bytes) yield cur;
}

/** Reads one chunk: process_vm_readv for readable pieces, /proc/PID/mem for the others. */
async function readChunk(pid: number, memFd: () => number, c: Chunk): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(c.bytes);
  let off = 0;
  let i = 0;
  while (i < c.pieces.length) {
    // A run of readable pieces goes in one process_vm_readv.
    if (c.pieces[i]!.readable) {
      const ranges: number[] = [];
      let want = 0;
      const first = i;
      while (i < c.pieces.length && c.pieces[i]!.readable) {
        const p = c.pieces[i++]!;
        ranges.push(p.start, p.end - p.start);
        want += p.end - p.start;
      }
      const got = await native.processVmReadvAsync(pid, buf, off, ranges);
      if (got !== want) {
        // Something in the run refused (e.g. a VM_IO page): read the rest through mem.
        let done = got;
        let at = off;
        for (let k = first; k < i; k++) {
          const p = c.pieces[k]!;
          const len = p.end - p.start;
          if (done >= len) {
            done -= len;
          } else {
            preadMem(memFd(), buf, at + done, p.start + done, len - done, pid);
            done = 0;
          }
          at += len;
        }
      }
      off += want;
    } else {
      const p = c.pieces[i++]!;
      preadMem(memFd(), buf, off, p.start, p.end - p.start, pid);
      off += p.end - p.start;
    }
  }
  return buf;
}

function preadMem(fd: number, buf: Buffer, off: number, at: number, len: number, pid: number): void {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, off + done, len - done, at + done);
    if (n <= 0) throw new CriuError('EIO', `pid ${pid}: cannot read memory at 0x${(at + done).toString(16)}`);
    done += n;
  }
}

export interface CopyStats {
  bytesRead: number;
}

/** Copies `pieces` of pid's memory into the writer, reading ahead one chunk. */
export async function copyPages(pid: number, pieces: Piece[], writer: PagesWriter): Promise<CopyStats> {
  let mem = -1;
  const memFd = () => (mem >= 0 ? mem : (mem = openSync(`/proc/${pid}/mem`, 'r')));
  let bytesRead = 0;
  try {
    const it = chunks(pieces);
    let next = it.next();
    const start = (c: Chunk) => {
      const p = readChunk(pid, memFd, c);
      p.catch(() => {}); // awaited below; this only keeps a failure from going unhandled meanwhile
      return p;
    };
    let pending = next.done ? null : start(next.value);
    while (pending) {
      const chunk = next.value as Chunk;
      const data = await pending;
      next = it.next();
      pending = next.done ? null : start(next.value);
      let off = 0;
      for (const p of chunk.pieces) {
        const len = p.end - p.start;
        await writer.addData(p.start, data.subarray(off, off + len));
        off += len;
      }
      bytesRead += chunk.bytes;
    }
  } finally {
    if (mem >= 0) closeSync(mem);
  }
  return { bytesRead };
}
