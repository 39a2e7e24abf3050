// An image set read and validated as a whole before anything acts on it, and the page
// resolution across a pre-dump chain (each page from the newest set that has it).
import { readCore, type Core } from './core.js';
import { ImageError } from './errors.js';
import { readFiles, type Files } from './files.js';
import { INVENTORY, readInventory, type Inventory } from './inventory.js';
import { readMm, type Mm } from './mm.js';
import { PAGE, RangeKind, firstSpanAfter, spansOf } from './pagemap.js';
import { PagesReader } from './pages.js';
import { PSTREE, readPstree, type Pstree } from './pstree.js';
import { sourceOf, type ImageSource, type SetLocation } from './source.js';
import { readTimers, timersFile, type Timers } from './timers.js';

export interface ImageSet {
  /** The set as messages name it (its directory, or ARCHIVE[:FOLDER]). */
  dir: string;
  /** Where its files come from. */
  source: ImageSource;
  inventory: Inventory;
  pstree: Pstree;
  cores: Map<number, Core>;
  mms: Map<number, Mm>;
  files: Map<number, Files>;
  timers: Map<number, Timers>;
}

/** Reads every metadata file of the set (a directory, or any source) and checks they agree with each other. */
export function loadImageSet(at: SetLocation): ImageSet {
  const src = sourceOf(at);
  const dir = src.name;
  const where = (file: string) => src.path(file);
  if (!src.has(INVENTORY)) {
    if (!src.exists()) throw new ImageError(dir, 'no such directory');
    throw new ImageError(where(INVENTORY), 'missing: not an image set, or a dump that did not finish');
  }
  const inventory = readInventory(src);
  const pstree = readPstree(src);
  const cores = new Map<number, Core>();
  const mms = new Map<number, Mm>();
  const files = new Map<number, Files>();
  const timers = new Map<number, Timers>();
  const pids = pstree.processes.map((p) => p.pid);
  if (!pids.includes(inventory.rootPid)) throw new ImageError(where(PSTREE), `root pid ${inventory.rootPid} is not in the tree`);
  // A pre-dump set holds memory only: its layout and pages, no thread or fd state.
  const full = inventory.kind === 'dump';
  for (const p of pstree.processes) {
    if (p.state === 'zombie') continue; // dead: nothing but its pstree entry
    if (!p.threads.includes(p.pid)) throw new ImageError(where(PSTREE), `process ${p.pid}: its leader is not among its threads`);
    for (const tid of full ? p.threads : []) {
      const core = readCore(src, tid);
      if (core.tid !== tid || core.pid !== p.pid) throw new ImageError(where(`core-${tid}.json`), `holds thread ${core.tid} of ${core.pid}, expected ${tid} of ${p.pid}`);
      if (tid === p.pid && !core.process) throw new ImageError(where(`core-${tid}.json`), 'the leader thread has no process state');
      cores.set(tid, core);
    }
    const mm = readMm(src, p.pid);
    if (mm.pid !== p.pid) throw new ImageError(where(`mm-${p.pid}.json`), `holds pid ${mm.pid}`);
    mms.set(p.pid, mm);
    if (!full) continue;
    const f = readFiles(src, p.pid);
    if (f.pid !== p.pid) throw new ImageError(where(`files-${p.pid}.json`), `holds pid ${f.pid}`);
    files.set(p.pid, f);
    const t = readTimers(src, p.pid);
    if (t.pid !== p.pid) throw new ImageError(where(timersFile(p.pid)), `holds pid ${t.pid}`);
    timers.set(p.pid, t);
  }
  return { dir, source: src, inventory, pstree, cores, mms, files, timers };
}

/** The set and its parents, newest first. A broken or mismatched link is an ImageError. */
export function loadChain(at: SetLocation): ImageSet[] {
  const chain = [loadImageSet(at)];
  const seen = new Set([chain[0]!.source.key]);
  for (;;) {
    const child = chain[chain.length - 1]!;
    const rel = child.inventory.parent;
    if (rel === null) return chain;
    const psrc = child.source.parent(rel);
    const pdir = psrc.name;
    const where = child.source.path(INVENTORY);
    if (seen.has(psrc.key)) throw new ImageError(where, `parent chain loops back to ${pdir}`);
    seen.add(psrc.key);
    if (!psrc.exists()) throw new ImageError(where, `parent set ${rel} (${pdir}) does not exist`);
    let parent: ImageSet;
    try {
      parent = loadImageSet(psrc);
    } catch (e) {
      throw new ImageError(where, `parent set ${rel} is unusable: ${(e as Error).message}`, { cause: e });
    }
    if (parent.inventory.id !== child.inventory.parentId) {
      throw new ImageError(where, `parent set ${rel} is not the one this set was made from (id ${parent.inventory.id}, expected ${child.inventory.parentId})`);
    }
    if (parent.inventory.rootPid !== child.inventory.rootPid) {
      throw new ImageError(where, `parent set ${rel} is of process ${parent.inventory.rootPid}, not ${child.inventory.rootPid}`);
    }
    chain.push(parent);
  }
}

/** A run of pages and where its content comes from. */
export type Segment =
  | { start: number; len: number; zero: true }
  | { start: number; len: number; zero: false; set: number; streamOff: number };

/**
 * Resolves the pages of `pid` in chain[0] into segments, following PARENT ranges down the
 * chain. A page the newest set says is in a parent, but which no parent holds, is an error.
 */
export function resolvePages(readers: PagesReader[], pid: number, within?: Array<{ start: number; end: number }>): Segment[] {
  const out: Segment[] = [];
  const walk = (level: number, start: number, len: number, strict: boolean) => {
    const r = readers[level];
    if (!r) throw new ImageError(readers[level - 1]!.path, `pages 0x${start.toString(16)}+${len} are promised by a parent set, but there is none`);
    const g = spansOf(r.index);
    let at = start;
    const end = start + len;
    for (let i = firstSpanAfter(g, at); i < g.start.length && at < end; i++) {
      const gStart = g.start[i]!;
      if (gStart >= end) break;
      if (gStart > at && strict) {
        throw new ImageError(r.path, `pages 0x${at.toString(16)}-0x${gStart.toString(16)} of pid ${pid} are promised by a child set but absent here`);
      }
      const s = Math.max(at, gStart);
      const e = Math.min(end, g.end[i]!);
      const kind = g.kind[i]! as RangeKind;
      if (kind === RangeKind.Data) out.push({ start: s, len: e - s, zero: false, set: level, streamOff: g.streamOff[i]! + (s - gStart) });
      else if (kind === RangeKind.Zero) out.push({ start: s, len: e - s, zero: true });
      else walk(level + 1, s, e - s, true);
      at = e;
    }
    if (at < end && strict) {
      throw new ImageError(r.path, `pages 0x${at.toString(16)}-0x${end.toString(16)} of pid ${pid} are promised by a child set but absent here`);
    }
  };
  // within: only these address ranges (a lazy restore resolves its lazy memory after resume).
  if (!within) walk(0, 0, Number.MAX_SAFE_INTEGER - PAGE + 1, false);
  else for (const w of [...within].sort((a, b) => a.start - b.start)) walk(0, w.start, w.end - w.start, false);
  return out;
}

/** Opens the page readers of pid along the chain (newest first). */
export function openChainReaders(chain: ImageSet[], pid: number): PagesReader[] {
  const readers: PagesReader[] = [];
  try {
    for (const s of chain) readers.push(PagesReader.open(s.source, pid));
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }
  return readers;
}

/** Every name in the set (the caller picks the foreign ones out with the registry). */
export function listFiles(at: SetLocation): string[] {
  return sourceOf(at).list();
}
