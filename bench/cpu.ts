// Other work on the machine spoils a benchmark on 2 vCPUs: measure how much CPU everything
// else used during each phase (system busy time minus our own process's), and wait for the
// machine to be idle before a phase starts.
import { readFileSync } from 'node:fs';

const USER_HZ = 100; // /proc/stat ticks per second on Linux

interface Snapshot {
  /** Busy CPU time of the whole system, ms (user, nice, system, irq, softirq, steal). */
  busyMs: number;
  /** CPU time of this process, all threads (workers, libuv pool), ms. */
  ownMs: number;
  at: number;
}

function systemBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
  return (busy * 1000) / USER_HZ;
}

export function snapshot(): Snapshot {
  const u = process.cpuUsage();
  return { busyMs: systemBusyMs(), ownMs: (u.user + u.system) / 1000, at: performance.now() };
}

/** Cores' worth of CPU that others (other processes, kernel threads) used since `s`. */
export function othersSince(s: Snapshot): { otherCores: number; ownCores: number } {
  const n = snapshot();
  const wall = n.at - s.at;
  if (wall <= 0) return { otherCores: 0, ownCores: 0 };
  const own = n.ownMs - s.ownMs;
  const others = Math.max(0, n.busyMs - s.busyMs - own);
  return { otherCores: others / wall, ownCores: own / wall };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Waits until the rest of the machine uses under `threshold` cores over a `windowMs` window,
 * for at most `maxWaitMs`. Returns the time waited and the last load seen.
 */
export async function waitIdle(maxWaitMs: number, threshold = 0.15, windowMs = 500): Promise<{ waitedMs: number; otherCores: number; idle: boolean }> {
  const t0 = performance.now();
  let otherCores = 0;
  for (;;) {
    const s = snapshot();
    await sleep(windowMs);
    otherCores = othersSince(s).otherCores;
    const waitedMs = performance.now() - t0;
    if (otherCores < threshold) return { waitedMs, otherCores, idle: true };
    if (waitedMs >= maxWaitMs) return { waitedMs, otherCores, idle: false };
  }
}
