// Pipes and FIFOs: the data sitting in the pipe, copied out with tee(2) so the pipe keeps it.
// A FIFO is reopened by path at restore; its data is saved unless processes outside hold it
// open too (then the pipe, data and all, outlives the dump, and a restore on this host finds
// it again by the path).
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, type Stats } from 'node:fs';
import { constants } from 'node:fs';
import { hasCode, native } from '../../kernel/native.js';
import { O } from '../../kernel/syscalls.js';

const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
const SPLICE_F_NONBLOCK = 2;

/** The data in the pipe behind `readable` (an fd that can read it), without consuming it. */
export function teePipe(readable: number): { size: number; data: Buffer } {
  const size = native.fcntl(readable, F_GETPIPE_SZ);
  const [r, w] = native.pipe2(O.CLOEXEC | O.NONBLOCK);
  try {
    native.fcntl(w, F_SETPIPE_SZ, size);
    let n = 0;
    try {
      n = native.tee(readable, w, size, SPLICE_F_NONBLOCK);
    } catch (e) {
      if (!hasCode(e, 'EAGAIN')) throw e; // EAGAIN: the pipe is empty
    }
    const data = Buffer.alloc(n);
    let got = 0;
    while (got < n) got += readSync(r, data, got, n - got, null);
    return { size, data };
  } finally {
    closeSync(r);
    closeSync(w);
  }
}

/** The FIFO's data, read through a reader of our own opened by the fd's /proc link (any end will do). */
export function fifoContent(pid: number, fd: number): { size: number; data: Buffer } {
  const ours = openSync(`/proc/${pid}/fd/${fd}`, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    return teePipe(ours);
  } finally {
    closeSync(ours);
  }
}

/**
 * Visits every fd of every process other than pid (and us), by a scan of every /proc/P/fd:
 * `visit` gets its pid, its link text and its /proc path, and returns true when it needs no
 * more of that process's fds.
 */
function eachOtherFd(pid: number, visit: (p: number, link: string, path: string) => boolean): void {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === pid || Number(p) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or a kernel thread
    }
    for (const f of fds) {
      const path = `/proc/${p}/fd/${f}`;
      try {
        if (visit(Number(p), readlinkSync(path), path)) break;
      } catch {
        /* closed meanwhile */
      }
    }
  }
}

/**
 * The processes other than pid (and us) that have `link` open (a /proc/P/fd link text: a
 * FIFO's path, "pipe:[ID]"); `st`, when given, must match too (the link text first, which
 * is cheap; the inode decides).
 */
export function holdersOf(pid: number, link: string, st?: Stats): number[] {
  const out: number[] = [];
  eachOtherFd(pid, (p, l, path) => {
    if (l !== link) return false;
    if (st) {
      const o = statSync(path);
      if (o.ino !== st.ino || o.dev !== st.dev) return false;
    }
    out.push(p);
    return true;
  });
  return out;
}

/**
 * The holders (as holdersOf) of every pipe pid has open now, in one scan: taken before a
 * freeze, so that the frozen dump need not scan every process's fds for them (only to name
 * them in a note: a holder that came or went since is of no consequence).
 */
export function pipeHolders(pid: number): Map<string, number[]> {
  const out = new Map<string, Set<number>>();
  for (const f of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const l = readlinkSync(`/proc/${pid}/fd/${f}`);
      if (l.startsWith('pipe:[')) out.set(l, new Set());
    } catch {
      /* closed meanwhile */
    }
  }
  if (out.size) eachOtherFd(pid, (p, l) => (out.get(l)?.add(p), false));
  return new Map([...out].map(([l, ps]) => [l, [...ps]]));
}

export function holderNames(pids: number[]): string {
  return pids
    .map((p) => {
      try {
        return `pid ${p} (${readFileSync(`/proc/${p}/comm`, 'utf8').trim()})`;
      } catch {
        return `pid ${p}`;
      }
    })
    .join(', ');
}
