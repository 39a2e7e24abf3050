// What every dump stage gets: options, logger, statistics, the fault switch.
import type { Logger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import { CriuError } from '../errors.js';
import type { NetworkLockMethod } from '../net/lock.js';
import type { HeldConnections } from './fds/tcp.js';

export interface DumpOptions {
  pid: number;
  imagesDir: string;
  leaveRunning?: boolean;
  shellJob?: boolean;
  /** CRIU's --tcp-established: established TCP connections are saved (TCP_REPAIR), not refused. */
  tcpEstablished?: boolean;
  /** How their packets are held off meanwhile (CRIU's --network-lock; default nftables). */
  networkLock?: NetworkLockMethod;
  /** The parent set of a pre-dump chain, relative to imagesDir (CRIU's --prev-images-dir). */
  prevImagesDir?: string;
  /** CRIU's --track-mem: recorded; tracking itself follows from the parent chain. */
  trackMem?: boolean;
  /**
   * zstd level for page frames (3 never collapsed on bad data here; 1 did); 0 stores them
   * uncompressed. Default 3, and 0 for the final dump of a tracked chain.
   */
  compressionLevel?: number;
  /** Compression worker threads (default: one per core). */
  compressThreads?: number;
  /**
   * The final dump of a tracked chain makes up to three more passes while the process runs,
   * right before its freeze, when enough was written since the last (see catch-up.ts).
   * Default true.
   */
  catchUp?: boolean;
  /** Checked at each stage boundary (before the freeze too): once fired, the dump stops and the process runs on as it was. */
  signal?: AbortSignal;
  /** Progress of the page copy (phase 'pages'). */
  onProgress?: ProgressFn;
}

export interface Stats {
  [name: string]: number;
}

export interface DumpContext {
  opts: DumpOptions;
  log: Logger;
  stats: Stats;
  /** Test-only fault switch (CRIU_TS_FAULT=stage:fail|kill), see faultPoint. */
  fault: string | undefined;
  /** --tcp-established: the connections read so far, in repair mode until the dump ends. */
  tcp?: HeldConnections;
}

/**
 * A named point where tests can make the dump fail (`fail`: throw, as any error would) or
 * die (`kill`: SIGKILL ourselves, as a crash or OOM would) to prove the target survives.
 */
export function faultPoint(ctx: { fault: string | undefined; log: Logger }, name: string): void {
  if (!ctx.fault) return;
  const [where, how] = ctx.fault.split(':');
  if (where !== name) return;
  ctx.log.warn(`fault injection at ${name}: ${how}`);
  if (how === 'kill') process.kill(process.pid, 'SIGKILL');
  throw new CriuError('EFAULTINJ', `fault injected at ${name}`);
}

export function timer(): () => number {
  const t0 = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - t0) / 1e6;
}
