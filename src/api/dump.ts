// dump, preDump and stopTracking as library calls: the options of `criu-ts dump` /
// `pre-dump` (see src/dump/context.ts), the result that `--json` prints.
import type { DumpOptions } from '../dump/context.js';
import type { DumpResult } from '../dump/dump.js';
import type { PreDumpOptions, PreDumpResult } from '../dump/predump.js';
import { silentLogger } from '../log.js';
import { typedErrors, type ApiOptions } from './options.js';

/** Test-only fault switch (CRIU_TS_FAULT in the CLI): STAGE:fail or STAGE:kill. */
interface Internal {
  fault?: string;
}

export type DumpApiOptions = DumpOptions & ApiOptions & Internal;
export type PreDumpApiOptions = PreDumpOptions & ApiOptions & Internal;

/** Checkpoints a process into imagesDir (created 0700) and kills it, unless leaveRunning. */
export function dump(o: DumpApiOptions): Promise<DumpResult> {
  return typedErrors(async () => {
    const { dump: run } = await import('../dump/dump.js');
    const { log, fault, ...opts } = o;
    return run(opts, log ?? silentLogger, fault);
  });
}

/** One pre-dump pass: copies memory while the process runs; later passes copy what it wrote. */
export function preDump(o: PreDumpApiOptions): Promise<PreDumpResult> {
  return typedErrors(async () => {
    const { preDump: run } = await import('../dump/predump.js');
    const { log, fault, ...opts } = o;
    return run(opts, log ?? silentLogger, fault);
  });
}

/** Ends a pre-dump chain's write tracking without a dump (`pre-dump --stop`). */
export function stopTracking(o: { pid: number; imagesDir: string } & Pick<ApiOptions, 'log'>): Promise<{ pid: number; stopped: boolean; reason?: string }> {
  return typedErrors(async () => {
    const { stopTracking: run } = await import('../dump/predump.js');
    return { pid: o.pid, ...(await run(o.imagesDir, o.pid, o.log ?? silentLogger)) };
  });
}
