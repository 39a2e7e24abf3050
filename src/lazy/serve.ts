// Serving one restored process's lazy memory to the end, with the failure rule: if the
// server cannot go on (a damaged frame, an unexpected error), the process is killed rather
// than left to run without its memory.
import { inStage } from '../errors.js';
import type { PagesReader } from '../images/pages.js';
import { native } from '../kernel/native.js';
import { SIG } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import type { Guardian } from './guardian.js';
import type { Pending } from './pending.js';
import { LazyServer, type LazyStats } from './server.js';

export interface ServeInput {
  log: Logger;
  guardian: Guardian;
  /** Each process: its uffd, its debt, its page readers (newest set first). */
  spaces: Array<{ pid: number; fd: number; pending: Pending; readers: PagesReader[] }>;
}

export function serveLazy(i: ServeInput): LazyStats {
  // One server per process tree; each space reads its own process's images.
  const first = i.spaces[0]!;
  const server = new LazyServer(i.log, i.guardian, Math.max(64 * 1024, first.readers[0]!.index.frameRawSize));
  for (const s of i.spaces) server.add({ ...s });
  let stats: LazyStats;
  try {
    stats = server.run();
  } catch (e) {
    for (const s of i.spaces) {
      try {
        native.kill(s.pid, SIG.KILL);
        i.log.error(`lazy pages of ${s.pid} cannot be served (${(e as Error).message}): killed it`);
      } catch {
        /* gone already */
      }
    }
    throw inStage('lazy-pages', first.pid, e);
  } finally {
    i.guardian.done();
  }
  const who = i.spaces.map((s) => s.pid).join(', ');
  i.log.info(
    `lazy pages of ${who} ${stats.ended === 'complete' ? 'all in' : 'stopped: the process exited'} after ${stats.completeMs.toFixed(1)} ms: ` +
      `${stats.faults} faults (${(stats.faultBytes / 1048576).toFixed(1)} MiB, p50 ${stats.faultP50Us.toFixed(0)} µs, p99 ${stats.faultP99Us.toFixed(0)} µs), ` +
      `${(stats.pushedBytes / 1048576).toFixed(1)} MiB pushed`,
  );
  return stats;
}

export function statsFields(prefix: string, o: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number') out[prefix + k[0]!.toUpperCase() + k.slice(1)] = v;
  return out;
}
