// The final dump of a tracked chain, rehearsed on the running process just before the freeze:
// its whole plan (the written-pages scan, which protects nothing again in a final dump) and
// the first REHEARSAL_BYTES of its copy run once, into a throwaway set on tmpfs. A fresh
// `criu-ts dump` has not run that code yet, and cold (interpreted, its inline caches empty,
// its memory untouched) the frozen copy cost 10.9 us a page against 6.4-8.5 after a
// rehearsal (CLI chains on 4 GiB at 1 %/s). The rehearsal only reads: nothing changes in the
// process or its tracking. Best effort: whatever fails in it is only logged.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { PagesWriter } from '../images/pages.js';
import { copyPlannedDeferred, planStreamed, type PassInput } from './pass.js';
import { parentsOf } from './plan.js';
import { timer } from './context.js';
import { COPY_CHUNK } from './memory.js';

/** Beyond this many written bytes the plan alone would take long enough to let many more pages be written. */
export const MAX_REHEARSAL = 256 << 20;
/** Enough copying to run every step of it (two chunks: a batch of frames is written, too). */
const REHEARSAL_BYTES = 2 * COPY_CHUNK;
/** Memory-backed: its writes and syncs cost no disk, which the frozen copy is about to need. */
const SCRATCH = '/dev/shm';
const ENOUGH = new Error('rehearsed enough');

/** The start of the name of a rehearsal's directory in /dev/shm (gone once it is over). */
export const rehearsalPrefix = (pid: number) => `criu-ts-rehearsal-${pid}-`;

export async function rehearse(input: Omit<PassInput, 'dir' | 'writer' | 'log' | 'progress'>, log: Logger): Promise<void> {
  const t = timer();
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(SCRATCH, rehearsalPrefix(input.pid)));
    const enough = (p: { bytesDone: number }) => {
      if (p.bytesDone >= REHEARSAL_BYTES) throw ENOUGH;
    };
    const i: PassInput = { ...input, dir, writer: new PagesWriter(dir, input.pid, input.pool), log: silentLogger, progress: enough };
    // The PARENT ranges too, worked out as the final dump's index will want them (the copy
    // stops early: this set's own index is never written).
    const c = await copyPlannedDeferred(i, planStreamed(i), false, (plan) => parentsOf(input.parent, plan.parentSlices));
    await c.complete(); // a small set: all of it copied
    log.debug(`rehearsal (pid ${input.pid}): all ${c.stats.pagesSaved} pages in ${t().toFixed(1)} ms`);
  } catch (e) {
    if (e === ENOUGH) log.debug(`rehearsal (pid ${input.pid}): ${t().toFixed(1)} ms`);
    else log.debug(`rehearsal (pid ${input.pid}) failed after ${t().toFixed(1)} ms: ${(e as Error).message}`);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
