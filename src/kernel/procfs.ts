// Reading /proc/PID: maps (with VmFlags from smaps), status, stat, tasks, limits, auxv.
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { CriuError } from '../errors.js';
import { native } from './native.js';

export interface MapEntry {
  start: number;
  end: number;
  /** 'rwxp' / 'r--s' ... as in /proc/PID/maps. */
  perms: string;
  offset: number;
  dev: string;
  inode: number;
  /** Path, '[heap]', '[stack]', '[vdso]', '' for anonymous, ' (deleted)' kept. */
  name: string;
  /** smaps VmFlags (gd, dd, wf, ...) when read with flags. */
  vmFlags?: string[];
}

const MAPS_LINE = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/;

export function parseMaps(text: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const m = MAPS_LINE.exec(line);
    if (!m) continue;
    out.push({
      start: parseInt(m[1]!, 16),
      end: parseInt(m[2]!, 16),
      perms: m[3]!,
      offset: parseInt(m[4]!, 16),
      dev: m[5]!,
      inode: Number(m[6]!),
      name: m[7]!,
    });
  }
  return out;
}

export function readMaps(pid: number): MapEntry[] {
  return parseMaps(readFileSync(`/proc/${pid}/maps`, 'utf8'));
}

/** Maps plus each VMA's VmFlags, from one read of smaps. */
export function readSmaps(pid: number): MapEntry[] {
  return parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
}

/**
 * readSmaps on the libuv pool. smaps walks every page table to count what it shows (about
 * 5 ms per GiB), so a dump reads it alongside other work while the process is frozen.
 */
export async function readSmapsAsync(pid: number): Promise<MapEntry[]> {
  // One pool job for the whole file (fs.promises.readFile would take one per 64 KiB, each
  // waiting for the main thread to queue the next).
  const fd = openSync(`/proc/${pid}/smaps`, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    const n = await native.readFullAsync(fd, buf);
    // A full buffer: the rest from the fd's position (readFileSync of an fd reads on from there).
    const text = n === buf.length ? Buffer.concat([buf, readFileSync(fd)]) : buf.subarray(0, n);
    return parseSmaps(text.toString('utf8'));
  } finally {
    closeSync(fd);
  }
}

function parseSmaps(text: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const line of text.split('\n')) {
    const m = MAPS_LINE.exec(line);
    if (m) {
      out.push(parseMaps(line)[0]!);
      continue;
    }
    if (line.startsWith('VmFlags:') && out.length) out[out.length - 1]!.vmFlags = line.slice(8).trim().split(/\s+/);
  }
  return out;
}

/** /proc/PID/status, or with tid /proc/PID/task/TID/status (per-thread fields: Seccomp, ...). */
export function readStatus(pid: number, tid?: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(tid === undefined ? `/proc/${pid}/status` : `/proc/${pid}/task/${tid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** /proc/PID/stat fields, 1-based as in proc(5); the comm field may hold spaces. */
export function readStat(pid: number): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = text.lastIndexOf(')');
  const head = text.slice(0, text.indexOf(' '));
  const comm = text.slice(text.indexOf('(') + 1, close);
  return ['', head, comm, ...text.slice(close + 2).trim().split(' ')];
}

export function listTasks(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
}

/**
 * Calls `each` once per thread of pid, listing /proc/PID/task again until a listing finds no
 * thread not yet seen (one made meanwhile by a thread seen before `each` reached it).
 * ESRCH if pid is gone; EAGAIN, "could not `purpose`", if it keeps creating threads.
 */
export function eachTask(pid: number, purpose: string, each: (tid: number) => void): void {
  const seen = new Set<number>();
  for (let pass = 0; pass < 100; pass++) {
    let tasks: number[];
    try {
      tasks = listTasks(pid);
    } catch (e) {
      throw new CriuError('ESRCH', `process ${pid} does not exist`, { cause: e });
    }
    const fresh = tasks.filter((t) => !seen.has(t));
    if (fresh.length === 0) return;
    for (const tid of fresh) {
      seen.add(tid);
      each(tid);
    }
  }
  throw new CriuError('EAGAIN', `process ${pid} keeps creating threads; could not ${purpose}`);
}

export function readAuxv(pid: number): bigint[] {
  const buf = readFileSync(`/proc/${pid}/auxv`);
  const out: bigint[] = [];
  for (let i = 0; i + 8 <= buf.length; i += 8) out.push(buf.readBigUInt64LE(i));
  return out;
}

export function readLink(path: string): string {
  return readlinkSync(path);
}

export interface Rlimit {
  resource: number;
  soft: bigint | null;
  hard: bigint | null;
}

/** Whether a PID exists, and who holds it (for "PID taken" errors). */
export function describePid(pid: number): string | null {
  try {
    const st = readStatus(pid);
    const state = st.get('State') ?? '?';
    return `${st.get('Name') ?? '?'} (state ${state}, parent ${st.get('PPid') ?? '?'})`;
  } catch {
    return null;
  }
}
