// What an image set holds, as data for `criu-ts show` (the CLI renders it; --json prints it).
import { kindOf } from './registry.js';
import { fdDetail, timerLines } from './describe-fds.js';
import { listFiles, loadChain, type ImageSet } from './imageset.js';
import { addr } from './mm.js';
import { PAGE, RangeKind } from './pagemap.js';
import { PagesReader } from './pages.js';
import type { SetLocation } from './source.js';

export interface VmaSummary {
  start: string;
  end: string;
  sizeBytes: number;
  prot: string;
  shared: boolean;
  kind: string;
  name: string;
  /** Pages of this VMA whose data is in this set / in a parent set / zero. */
  pagesHere: number;
  pagesInParent: number;
  pagesZero: number;
}

export interface ProcessSummary {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  comm: string;
  threads: number[];
  vmas: VmaSummary[];
  /** detail: the kind's saved state in words ("stream listening on /run/x.sock, backlog 5" ...). */
  fds: Array<{ fd: number; kind: string; target: string; flags: string; pos?: number; detail?: string }>;
  /** Armed interval and POSIX timers, one line each. */
  timers: string[];
  /** uncompressedFrames: frames stored as they are (level 0, the final dump of a tracked chain). */
  pages: { ranges: number; frames: number; uncompressedFrames: number; rawBytes: number; storedBytes: number; ratio: number };
}

export interface SetSummary {
  dir: string;
  kind: string;
  version: number;
  createdAt: string;
  toolVersion: string;
  kernel: string;
  rootPid: number;
  parent: string | null;
  /** The chain below this set, newest first (relative parent paths as written). */
  chain: Array<{ dir: string; kind: string; createdAt: string }>;
  processes: ProcessSummary[];
  stats: Record<string, number>;
  notes: string[];
  foreignFiles: string[];
}

const protString = (p: number) => `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 4 ? 'x' : '-'}`;

function flagString(flags: number): string {
  const acc = ['O_RDONLY', 'O_WRONLY', 'O_RDWR'][flags & 3] ?? '?';
  const extra = [
    [0o2000, 'O_APPEND'],
    [0o4000, 'O_NONBLOCK'],
    [0o200000, 'O_DIRECTORY'],
  ]
    .filter(([bit]) => flags & (bit as number))
    .map(([, n]) => n);
  return [acc, ...extra].join('|');
}

function describeProcess(set: ImageSet, pid: number): ProcessSummary {
  const entry = set.pstree.processes.find((p) => p.pid === pid)!;
  if (entry.state === 'zombie') {
    const st = entry.exitStatus ?? 0;
    const how = st & 0x7f ? `killed by signal ${st & 0x7f}` : `exited with ${(st >> 8) & 0xff}`;
    return {
      pid,
      ppid: entry.ppid,
      pgid: entry.pgid,
      sid: entry.sid,
      comm: `(zombie: ${how})`,
      threads: [],
      vmas: [],
      fds: [],
      timers: [],
      pages: { ranges: 0, frames: 0, uncompressedFrames: 0, rawBytes: 0, storedBytes: 0, ratio: 0 },
    };
  }
  const mm = set.mms.get(pid)!;
  const core = set.cores.get(pid); // a pre-dump set has none
  const reader = PagesReader.open(set.source, pid);
  try {
    const ix = reader.index;
    const vmas = mm.vmas.map((v): VmaSummary => {
      const s = addr(v.start);
      const e = addr(v.end);
      const count = { [RangeKind.Data]: 0, [RangeKind.Parent]: 0, [RangeKind.Zero]: 0 };
      for (const r of ix.ranges) {
        const rs = Math.max(s, r.start);
        const re = Math.min(e, r.start + r.nrPages * PAGE);
        if (re > rs) count[r.kind] += (re - rs) / PAGE;
      }
      return {
        start: v.start,
        end: v.end,
        sizeBytes: e - s,
        prot: protString(v.prot) + (v.shared ? 's' : 'p'),
        shared: v.shared,
        kind: v.kind,
        name: v.name,
        pagesHere: count[RangeKind.Data],
        pagesInParent: count[RangeKind.Parent],
        pagesZero: count[RangeKind.Zero],
      };
    });
    return {
      pid,
      ppid: entry.ppid,
      pgid: entry.pgid,
      sid: entry.sid,
      comm: core?.process?.comm ?? core?.comm ?? '',
      threads: entry.threads,
      vmas,
      fds: (set.files.get(pid)?.fds ?? []).map((f) => ({
        fd: f.fd,
        kind: f.deleted ? 'reg (deleted, content saved)' : f.kind,
        target: f.path ?? f.target,
        flags: flagString(f.flags) + (f.cloexec ? '|O_CLOEXEC' : ''),
        ...(f.pos !== undefined ? { pos: f.pos } : {}),
        ...(fdDetail(f) ? { detail: fdDetail(f) } : {}),
      })),
      timers: timerLines(set.timers.get(pid)),
      pages: {
        ranges: ix.ranges.length,
        frames: ix.frames.length,
        uncompressedFrames: ix.frames.reduce((n, f) => n + (f.stored ? 1 : 0), 0),
        rawBytes: ix.rawBytes,
        storedBytes: ix.pagesBytes,
        ratio: ix.pagesBytes ? ix.rawBytes / ix.pagesBytes : 0,
      },
    };
  } finally {
    reader.close();
  }
}

/** The set in a directory, or in any source (an archive read in place). */
export function describeSet(at: SetLocation): SetSummary {
  const chain = loadChain(at);
  const set = chain[0]!;
  const inv = set.inventory;
  return {
    dir: set.dir,
    kind: inv.kind,
    version: inv.version,
    createdAt: inv.createdAt,
    toolVersion: inv.toolVersion,
    kernel: inv.kernel,
    rootPid: inv.rootPid,
    parent: inv.parent,
    chain: chain.slice(1).map((s) => ({ dir: s.dir, kind: s.inventory.kind, createdAt: s.inventory.createdAt })),
    processes: set.pstree.processes.map((p) => describeProcess(set, p.pid)),
    stats: inv.stats,
    notes: inv.notes ?? [],
    foreignFiles: listFiles(set.source).filter((f) => !kindOf(f)),
  };
}
