// A final dump's catch-up passes: pre-dump passes made by the dump itself right before its
// freeze, into DIR/catch-up (then catch-up-2, -3: see anotherCatchUp), the last of them the
// final set's parent.
//
// What a final dump saves while frozen is what the process wrote since the last pass's
// protecting scan: the whole of that pass's copy, then whatever the user's script or the
// CLI took until the dump froze it (a fresh `criu-ts dump` needs about a second). At 1 % of
// 4 GiB a second, that was 10-20k pages, 50-180 ms frozen. The catch-up pass copies those
// pages while the process runs (stored, like the final dump's: it is on the downtime's path)
// and protects them again, so the freeze finds only what was written during the catch-up:
// its protecting scan and a short copy. Below CATCH_UP_MIN_BYTES it is not worth its scan.
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Logger } from '../log.js';
import type { CompressPool } from '../images/compress-pool.js';
import { loadChain } from '../images/imageset.js';
import { openParent, type Parent } from './chain.js';
import { preDump, type PreDumpResult } from './predump.js';
import { lastPass, type TrackingInfo } from './tracking.js';

export const CATCH_UP_DIR = 'catch-up';
/** Written since the last pass, at least, for a catch-up pass to pay for its scan of all memory. */
export const CATCH_UP_MIN_BYTES = 16 << 20;
/** Catch-up passes at most (catch-up, catch-up-2, ...): each costs a scan of all memory. */
export const MAX_CATCH_UPS = 3;

/**
 * Whether `round` catch-up passes are followed by another, given the bytes written since the
 * last pass before them (`before`) and since the last of them (`now`): only while enough is
 * written and a pass leaves at most three quarters of what it found (a process that writes
 * as fast as we copy gains nothing from more). At 10 % of 4 GiB a second, a first pass that
 * left 90 % (61k of 68k pages) was followed by none, and the freeze took 372 ms; runs whose
 * first pass left less went on to three and froze for 96-112 ms with 12k pages.
 */
export function anotherCatchUp(round: number, before: number, now: number): boolean {
  return round < MAX_CATCH_UPS && now >= CATCH_UP_MIN_BYTES && now <= before * 0.75;
}

export interface CatchUpResult {
  /** The catch-up set, opened as the final dump's parent. */
  parent: Parent;
  pass: PreDumpResult;
}

/**
 * One pass, into the first free catch-up directory of dir (see catchUpDir), continuing
 * `parent`'s tracking of `pids` (uffds the dump holds).
 * If it fails after its scan has protected pages, the chain's last pass is the catch-up
 * (incomplete): a dump retried from `parent` finds the tracking stale and saves all memory.
 */
export async function catchUpPass(
  input: { pid: number; dir: string; parent: Parent; pool: CompressPool; pids: ReadonlySet<number>; signal?: AbortSignal },
  log: Logger,
  fault?: string,
): Promise<CatchUpResult> {
  // A dump retried into the same directory finds the catch-up of the one that failed (see
  // catchUpDir): that set stays as it was, the chain may go on from it.
  const sub = join(input.dir, catchUpDir(input.dir));
  // The parent as the catch-up set names it: relative to its own directory.
  const parent = { ...input.parent, rel: relative(sub, input.parent.dir) || '.' };
  const pass = await preDump({ pid: input.pid, imagesDir: sub, signal: input.signal }, log, catchUpFault(fault), { parent, pool: input.pool, pids: input.pids });
  return { parent: openParent(input.dir, relative(input.dir, sub), input.pid), pass };
}

/**
 * The dump's fault switch as the catch-up pass sees it: `catch-up/STAGE:how` is the pass's
 * STAGE:how; the dump's own stage names must not fire in here (they share 'plan', 'pages').
 */
export function catchUpFault(fault: string | undefined): string | undefined {
  return fault?.startsWith('catch-up/') ? fault.slice('catch-up/'.length) : undefined;
}

/** catch-up, or catch-up-2, -3...: the first name not taken in dir. */
export function catchUpDir(dir: string): string {
  for (let k = 1; ; k++) {
    const name = k === 1 ? CATCH_UP_DIR : `${CATCH_UP_DIR}-${k}`;
    if (!existsSync(join(dir, name))) return name;
  }
}

/**
 * Where a dump from `parent` goes on from when dumps from it failed after their catch-up
 * passes: the chain's last pass (the tracker's record) is such a pass, and every set between
 * it and `parent` is one too. Those sets hold the pages their scans protected again, so a
 * dump that ignored them would have to save everything. Undefined: nothing to go on from.
 */
export function failedCatchUp(parent: Parent, info: TrackingInfo): string | undefined {
  try {
    const last = lastPass(info);
    if (!last?.catchUpDir || last.id === parent.inventory.id) return undefined;
    const chain = loadChain(last.catchUpDir);
    if (chain[0]!.inventory.id !== last.id) return undefined;
    for (const set of chain) {
      if (set.inventory.id === parent.inventory.id) return last.catchUpDir;
      if (!set.inventory.options.catchUp) return undefined;
    }
  } catch {
    /* no usable record or chain: the tracking counts as lost, as without catch-ups */
  }
  return undefined;
}
