// One dump + restore of a bench victim, in this process (dump() and restore(), detached).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { native } from '../src/kernel/native.js';
import { SIG } from '../src/kernel/syscalls.js';
import { silentLogger } from '../src/log.js';
import { restore } from '../src/restore/restore.js';
import { rate, type Rate } from './limits.js';
import type { Victim } from './victim.js';

export interface DumpResult {
  /** Around the dump() call. */
  wallMs: number;
  totalMs: number;
  freezeMs: number;
  pagesMs: number;
  frozenMs: number;
  rawBytes: number;
  storedBytes: number;
  /** The whole image directory. */
  imageBytes: number;
  ratio: number;
  /** Page data per wall time of the whole dump. */
  wall: Rate;
  /** Page data per time of the pages stage (scan, read, compress, write, fsync). */
  pages: Rate;
  stats: Record<string, number>;
}

export interface RestoreResult {
  /** Around the restore() call: from start until the process runs on its own. */
  wallMs: number;
  totalMs: number;
  pagesMs: number;
  pagesBytes: number;
  /** Memory written per time of the pages stage. */
  pages: Rate;
  /** Memory written per time of the whole restore. */
  wall: Rate;
  /** VmRSS of the restored process, as a check that its memory is there. */
  rssBytes: number;
  stats: Record<string, number>;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += statSync(join(dir, f)).size;
  return n;
}

/** Dumps with --leave-running (the caller kills the victim: see run.ts). */
export async function runDump(v: Victim, imagesDir: string, o: { level: number; threads?: number }): Promise<DumpResult> {
  const t0 = performance.now();
  const r = await dump({ pid: v.pid, imagesDir, leaveRunning: true, shellJob: true, compressionLevel: o.level, compressThreads: o.threads }, silentLogger);
  const wallMs = performance.now() - t0;
  const s = r.stats;
  const raw = s.pagesBytesRaw ?? 0;
  const stored = s.pagesBytesStored ?? 0;
  return {
    wallMs,
    totalMs: s.totalMs ?? 0,
    freezeMs: s.freezeMs ?? 0,
    pagesMs: s.pagesMs ?? 0,
    frozenMs: s.frozenMs ?? 0,
    rawBytes: raw,
    storedBytes: stored,
    imageBytes: dirBytes(imagesDir),
    ratio: stored ? raw / stored : 0,
    wall: rate(raw, wallMs),
    pages: rate(raw, s.pagesMs ?? 0),
    stats: s,
  };
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Restores detached, checks the process runs, then kills and reaps it. */
export async function runRestore(imagesDir: string): Promise<RestoreResult> {
  const t0 = performance.now();
  const r = await restore({ imagesDir, detach: true, shellJob: true }, silentLogger);
  const wallMs = performance.now() - t0;
  try {
    const state = readFileSync(`/proc/${r.pid}/stat`, 'utf8').split(') ')[1]?.[0];
    if (state !== 'S' && state !== 'R') throw new Error(`restored pid ${r.pid} is in state ${state}, not running`);
    const s = r.stats;
    const bytes = s.pagesBytes ?? 0;
    return {
      wallMs,
      totalMs: s.totalMs ?? 0,
      pagesMs: s.pagesMs ?? 0,
      pagesBytes: bytes,
      pages: rate(bytes, s.pagesMs ?? 0),
      wall: rate(bytes, wallMs),
      rssBytes: rssOf(r.pid),
      stats: s,
    };
  } finally {
    // The restored process is our child (we are also a subreaper): kill it and reap it.
    try {
      native.kill(r.pid, SIG.KILL);
      native.waitpid(r.pid, 0);
    } catch {
      /* already gone */
    }
  }
}
