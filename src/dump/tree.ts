// The process tree below -t PID: found and frozen top-down. A process cannot fork once its
// threads are stopped, so listing its children after freezing it misses nobody.
// Zombies cannot be traced: they are recorded with their exit status, to be recreated dead.
import { readFileSync } from 'node:fs';
import { CriuError } from '../errors.js';
import { listTasks, readStat } from '../kernel/procfs.js';
import type { Logger } from '../log.js';
import { freezeProcess, thaw, type Frozen } from './freeze.js';

export interface TreeProc {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Live processes: their stopped threads. */
  frozen?: Frozen;
  /** Zombies: the wait status their parent will collect. */
  zombieStatus?: number;
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of listTasks(pid)) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* thread gone */
    }
  }
  return out.sort((a, b) => a - b);
}

function isZombie(stat: string[]): boolean {
  return stat[3] === 'Z';
}

type Ids = Omit<TreeProc, 'frozen' | 'zombieStatus'>;

/**
 * Walks the tree below root breadth first; visit(ids, stat) says whether to go on below a
 * process. A child that exited and was reaped meanwhile is skipped; a missing root is an error.
 */
function walk(root: number, visit: (ids: Ids, stat: string[]) => boolean): void {
  const queue = [root];
  const seen = new Set<number>();
  while (queue.length) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    let stat: string[];
    try {
      stat = readStat(pid);
    } catch (e) {
      if (pid === root) throw new CriuError('ESRCH', `process ${pid} does not exist`, { cause: e });
      continue;
    }
    if (visit({ pid, ppid: Number(stat[4]), pgid: Number(stat[5]), sid: Number(stat[6]) }, stat)) queue.push(...childrenOf(pid));
  }
}

/** Freezes pid and everything below it, breadth first (the order restore creates them in). */
export function freezeTree(root: number, log: Logger): TreeProc[] {
  const out: TreeProc[] = [];
  try {
    walk(root, (ids, stat) => {
      if (isZombie(stat)) {
        if (ids.pid === root) throw new CriuError('ESRCH', `process ${root} is a zombie`);
        out.push({ ...ids, zombieStatus: Number(stat[52] ?? 0) });
        return false;
      }
      // Frozen before its children are listed: a stopped process cannot fork.
      out.push({ ...ids, frozen: freezeProcess(ids.pid, log) });
      return true;
    });
    return out;
  } catch (e) {
    thawTree(out);
    throw e;
  }
}

export function thawTree(procs: TreeProc[]): void {
  for (const p of procs) if (p.frozen) thaw(p.frozen);
}

export const live = (procs: TreeProc[]) => procs.filter((p): p is TreeProc & { frozen: Frozen } => !!p.frozen);

/** The live processes below root, breadth first, without stopping them (pre-dump passes). */
export function listTree(root: number): Ids[] {
  const out: Ids[] = [];
  walk(root, (ids, stat) => {
    if (isZombie(stat)) return false;
    out.push(ids);
    return true;
  });
  return out;
}
