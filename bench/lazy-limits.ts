// The raw limits of lazy restore's page filling, measured in the same run: UFFDIO_COPY into a
// stub's fresh memory (what serving a page costs the kernel), decompressing the victim's own
// image frames (what reading it costs), and both in turn, as the lazy server does them on
// its one thread.
import { closeSync } from 'node:fs';
import { PagesReader } from '../src/images/pages.js';
import { native, stubPath } from '../src/kernel/native.js';
import { Remote } from '../src/kernel/remote.js';
import { MAP, PROT, PTRACE_O, SIG, UFFD } from '../src/kernel/syscalls.js';
import { copyAll, takeUffdFrom } from '../src/kernel/uffd.js';
import { decodeStatus } from '../src/kernel/wait.js';
import { rate, type Rate } from './limits.js';

const MiB = 1 << 20;

export interface LazyLimits {
  /** UFFDIO_COPY of 64 KiB at a time (a fault's cluster, a background batch's ops) into fresh memory. */
  copy64K: Rate;
  /** UFFDIO_COPY of 4 MiB at a time. */
  copy4M: Rate;
  /** PagesReader.frame() over the image's frames (pread + CRC + zstd decompress), one thread. */
  decompress: Rate;
  /** Each frame decompressed then UFFDIO_COPY'd (64 KiB): the server's inner loop, without faults. */
  decompressCopy: Rate;
  /** Bytes each was measured on. */
  sampleBytes: number;
}

/** A stub (stopped, ours, EXITKILL) with a private anonymous region registered MISSING. */
function withRegion<T>(bytes: number, fn: (fd: number, region: number) => T): T {
  const pid = native.clone3Stub(0, stubPath, PTRACE_O.EXITKILL);
  let fd = -1;
  try {
    const remote = Remote.forThread(pid);
    const region = remote.mmap(0, bytes, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
    fd = takeUffdFrom(remote, pid).fd;
    native.uffdApi(fd, 0n);
    native.uffdRegister(fd, region, bytes, UFFD.REGISTER_MODE_MISSING);
    return fn(fd, region);
  } finally {
    if (fd >= 0) closeSync(fd);
    try {
      native.kill(pid, SIG.KILL);
    } catch {
      /* gone */
    }
    // Reap it; a traced stub may report stops before its death.
    for (;;) {
      try {
        const k = decodeStatus(native.waitpid(pid, 0).status).kind;
        if (k === 'exited' || k === 'signaled') break;
      } catch {
        break;
      }
    }
  }
}

function copyRate(bytes: number, chunk: number, src: Buffer): Rate {
  return withRegion(bytes, (fd, region) => {
    const t0 = performance.now();
    for (let off = 0; off < bytes; off += chunk) copyAll(fd, region + off, src, off % src.length, Math.min(chunk, bytes - off));
    return rate(bytes, performance.now() - t0);
  });
}

/** Frame numbers covering about `bytes`: spread over the whole image, or all of it in turn as often as needed. */
function frameSample(r: PagesReader, bytes: number): number[] {
  const n = r.index.frames.length;
  const want = Math.max(1, Math.ceil(bytes / r.index.frameRawSize));
  return Array.from({ length: want }, (_, i) => (want <= n ? Math.floor((i * n) / want) : i % n));
}

export function measureLazyLimits(imagesDir: string, pid: number, sampleBytes: number): LazyLimits {
  // The source of the copies: real page data (the first 4 MiB of the image).
  const r = PagesReader.open(imagesDir, pid, 8);
  try {
    const src = Buffer.alloc(4 * MiB);
    r.readStream(0, Math.min(src.length, r.index.frames.reduce((n, f) => n + f.rawSize, 0)), src, 0);
    const bytes = Math.max(16 * MiB, Math.min(sampleBytes, 1 << 30));
    // (A small image is decompressed several times over: the reader caches only 8 frames.)
    // Best of three: on this VM one run can be 15 % off the next.
    const best = (f: () => Rate) => [f(), f(), f()].sort((a, b) => b.gbps - a.gbps)[0]!;
    const copy64K = best(() => copyRate(bytes, 64 * 1024, src));
    const copy4M = best(() => copyRate(bytes, 4 * MiB, src));

    const frames = frameSample(r, bytes);
    const decomp = () => {
      let n = 0;
      const t0 = performance.now();
      for (const i of frames) n += r.frame(i).length;
      return rate(n, performance.now() - t0);
    };
    const decompress = best(decomp);
    const raw = frames.reduce((n, i) => n + r.index.frames[i]!.rawSize, 0);
    const decompressCopy = best(() =>
      withRegion(Math.ceil(raw / 4096) * 4096, (fd, region) => {
        let at = 0;
        const t0 = performance.now();
        for (const i of frames) {
          const f = r.frame(i);
          copyAll(fd, region + at, f, 0, f.length);
          at += f.length;
        }
        return rate(at, performance.now() - t0);
      }),
    );
    return { copy64K, copy4M, decompress, decompressCopy, sampleBytes: bytes };
  } finally {
    r.close();
  }
}
