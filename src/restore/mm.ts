// The address space: every VMA mapped at its place, the saved pages written in, the mm
// fields and the executable set with PR_SET_MM_MAP.
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { CriuError } from '../errors.js';
import { ImageError } from '../images/errors.js';
import type { Segment } from '../images/imageset.js';
import { addr, type Mm, type Vma } from '../images/mm.js';
import type { PagesReader } from '../images/pages.js';
import { MAP, O, PR, PR_SET_MM, SYS } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import { putBytes, putString, u64s } from './remote-args.js';
import type { Stub } from './stub.js';
import type { ShmRegistry } from './shm.js';

const AT_FDCWD = -100;
const MADVISE: Record<string, number> = { hg: 14, nh: 15, dd: 16, dc: 10, wf: 18, mg: 12 };

/** Opens `path` inside the stub; returns the stub's fd. */
export function openInStub(stub: Stub, path: string, flags: number): number {
  return stub.remote.call(SYS.openat, `openat(${path})`, AT_FDCWD, putString(stub, path), flags, 0);
}

function checkFile(v: Vma, mmPath: string): void {
  let st;
  try {
    st = statSync(v.path!);
  } catch (e) {
    throw new CriuError('ENOENT', `mapped file ${v.path} (VMA ${v.start}-${v.end}) is missing: ${(e as Error).message}`, { cause: e });
  }
  if (v.fileSize !== undefined && st.size !== v.fileSize) {
    throw new ImageError(mmPath, `mapped file ${v.path} is ${st.size} bytes now, ${v.fileSize} when dumped: refusing to map a different file`);
  }
}

export function createVmas(stub: Stub, mm: Mm, mmPath: string, log: Logger, shm?: ShmRegistry): void {
  const r = stub.remote;
  for (const v of mm.vmas) {
    if (v.kind === 'vdso' || v.kind === 'vvar' || v.kind === 'vvar_vclock' || v.kind === 'vsyscall') continue;
    const start = addr(v.start);
    const len = addr(v.end) - start;
    const share = v.shared ? MAP.SHARED : MAP.PRIVATE;
    if (shm?.isShared(v)) {
      shm.map(stub, v);
    } else if (v.kind === 'file') {
      checkFile(v, mmPath);
      const writable = v.shared && (v.prot & 2) !== 0;
      const fd = openInStub(stub, v.path!, writable ? O.RDWR : O.RDONLY);
      try {
        r.mmap(start, len, v.prot, share | MAP.FIXED, fd, v.offset ?? 0);
      } finally {
        r.call(SYS.close, 'close', fd);
      }
    } else {
      // anon and file-deleted (whose whole content is in the image)
      const grows = v.growsDown ? MAP.GROWSDOWN : 0;
      r.mmap(start, len, v.prot, share | MAP.ANONYMOUS | MAP.FIXED | grows);
    }
    for (const f of v.vmFlags) {
      const advice = MADVISE[f];
      if (advice !== undefined) r.call(SYS.madvise, `madvise(${f})`, start, len, advice);
    }
  }
  log.debug(`mapped ${mm.vmas.length} VMAs`);
}

const BATCH = 4 << 20;

/**
 * Writes every saved page through /proc/PID/mem, which writes through any protection
 * (read-only, PROT_NONE, private file mappings: it breaks COW as a write fault would).
 */
export function fillMemory(stub: Stub, readers: PagesReader[], segments: Segment[]): { bytes: number; segments: number } {
  const fd = openSync(`/proc/${stub.pid}/mem`, 'r+');
  let bytes = 0;
  try {
    const buf = Buffer.allocUnsafe(BATCH);
    let run: Segment[] = [];
    let runLen = 0;
    const flush = () => {
      if (!run.length) return;
      let off = 0;
      for (const s of run) {
        if (s.zero) continue;
        readers[s.set]!.readStream(s.streamOff, s.len, buf, off);
        off += s.len;
      }
      const at = run[0]!.start;
      let done = 0;
      while (done < off) done += writeSync(fd, buf, done, off - done, at + done);
      bytes += off;
      run = [];
      runLen = 0;
    };
    for (const seg of segments) {
      if (seg.zero) continue; // fresh memory reads as zero already
      for (let s = 0; s < seg.len; ) {
        const n = Math.min(seg.len - s, BATCH - runLen);
        const piece: Segment = { ...seg, start: seg.start + s, len: n, streamOff: seg.streamOff + s };
        const last = run[run.length - 1];
        if (last && last.start + last.len !== piece.start) flush();
        run.push(piece);
        runLen += n;
        s += n;
        if (runLen === BATCH) flush();
      }
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return { bytes, segments: segments.length };
}

/** PR_SET_MM_MAP: code/data/brk/stack/arg/env, auxv and the exe link, in one call. */
export function setMmMap(stub: Stub, mm: Mm): void {
  const f = mm.mmFields;
  let exeFd = -1;
  if (mm.exe) {
    try {
      exeFd = openInStub(stub, mm.exe.path, O.RDONLY);
    } catch (e) {
      throw new CriuError('ENOENT', `executable ${mm.exe.path} cannot be opened: ${(e as Error).message}`, { cause: e });
    }
  }
  try {
    const auxv = u64s(...mm.auxv.map((h) => BigInt(h)));
    const auxvAddr = putBytes(stub, auxv, 512);
    const fields = [f.startCode, f.endCode, f.startData, f.endData, f.startBrk, f.brk, f.startStack, f.argStart, f.argEnd, f.envStart, f.envEnd];
    const head = u64s(...fields.map((h) => BigInt(h)), auxvAddr);
    const tail = Buffer.alloc(8);
    tail.writeUInt32LE(auxv.length, 0);
    tail.writeInt32LE(exeFd, 4);
    const map = putBytes(stub, Buffer.concat([head, tail]), 0);
    stub.remote.call(SYS.prctl, 'prctl(PR_SET_MM_MAP)', PR.SET_MM, PR_SET_MM.MAP, map, head.length + tail.length, 0);
  } finally {
    if (exeFd >= 0) stub.remote.call(SYS.close, 'close', exeFd);
  }
}
