// One pre-dump bench case: a victim of SIZE writing PCT % of its pages per second, tracked
// through a chain of pre-dump passes and a final dump (--leave-running, so the same victim
// serves the next rate), with its store throughput sampled untracked and tracked.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dump } from '../src/dump/dump.js';
import { preDump, stopTracking } from '../src/dump/predump.js';
import { native } from '../src/kernel/native.js';
import type { Logger } from '../src/log.js';
import { packageRoot } from '../src/paths.js';
import { buildFixtures, fixture } from '../test/helpers/fixtures.js';
import { startTarget, type Target } from '../test/helpers/target.js';

const root = packageRoot();
const source = join(root, 'bench', 'predump-victim.c');
const binary = join(root, 'dist', 'bench', 'bin', 'predump-victim');

export function buildPredumpVictim(): void {
  if (!existsSync(fixture('launch'))) buildFixtures();
  if (existsSync(binary) && statSync(binary).mtimeMs > statSync(source).mtimeMs) return;
  mkdirSync(join(root, 'dist', 'bench', 'bin'), { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-o', binary, source], { stdio: 'inherit' });
}

export interface PredumpVictim {
  target: Target;
  pid: number;
  bytes: number;
  counterAddr: number;
  fillMs: number;
}

export async function startPredumpVictim(sizeMiB: number, pct: number): Promise<PredumpVictim> {
  const t0 = performance.now();
  const target = await startTarget(binary, [String(sizeMiB), String(pct)]);
  try {
    await target.waitFor('ready', 600_000);
    const num = (prefix: string) => {
      const l = target.lines.find((x) => x.startsWith(prefix));
      if (!l) throw new Error(`predump victim: no "${prefix}" line: ${target.lines.join(' | ')}`);
      return l.split(' ').slice(1).map((x) => Number(x));
    };
    const [, bytes] = num('region ');
    const [counterAddr] = num('counter ');
    return { target, pid: target.pid, bytes: bytes!, counterAddr: counterAddr!, fillMs: performance.now() - t0 };
  } catch (e) {
    await target.stop();
    throw e;
  }
}

interface Sample {
  stores: number;
  cpuNs: number;
  /** Minor faults so far (/proc/PID/stat): a tracked store to a protected page is one. */
  minflt: number;
  at: number;
}

function minorFaults(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
}

/** The victim's published {seq, stores, cpu_ns}, read consistently (seqlock) from its memory. */
function sample(v: PredumpVictim): Sample {
  const buf = Buffer.alloc(24);
  for (;;) {
    native.processVmReadv(v.pid, buf, 0, [v.counterAddr, 24]);
    const seq = buf.readBigUInt64LE(0);
    const stores = Number(buf.readBigUInt64LE(8));
    const cpuNs = Number(buf.readBigUInt64LE(16));
    native.processVmReadv(v.pid, buf, 0, [v.counterAddr, 8]);
    if (seq % 2n === 0n && buf.readBigUInt64LE(0) === seq) return { stores, cpuNs, minflt: minorFaults(v.pid), at: performance.now() };
  }
}

export interface StoreRate {
  /** Stores per second of wall time. */
  perSec: number;
  /** Stores per second of the victim's own CPU time: unaffected by other load. */
  perCpuSec: number;
  /** Share of one CPU the victim got. */
  cpuShare: number;
  /** Minor page faults per second (untracked: about none; tracked: the pages it dirties). */
  faultsPerSec: number;
}

/** Store rates over the next `ms`. */
async function storeRate(v: PredumpVictim, ms: number): Promise<StoreRate> {
  const a = sample(v);
  await sleep(ms);
  const b = sample(v);
  const wallS = (b.at - a.at) / 1000;
  const cpuS = (b.cpuNs - a.cpuNs) / 1e9;
  return {
    perSec: (b.stores - a.stores) / wallS,
    perCpuSec: cpuS > 0 ? (b.stores - a.stores) / cpuS : 0,
    cpuShare: cpuS / wallS,
    faultsPerSec: (b.minflt - a.minflt) / wallS,
  };
}

const mean = (rs: StoreRate[]): StoreRate => ({
  perSec: rs.reduce((a, r) => a + r.perSec, 0) / rs.length,
  perCpuSec: rs.reduce((a, r) => a + r.perCpuSec, 0) / rs.length,
  cpuShare: rs.reduce((a, r) => a + r.cpuShare, 0) / rs.length,
  faultsPerSec: rs.reduce((a, r) => a + r.faultsPerSec, 0) / rs.length,
});

export interface PassResult {
  pass: number;
  frozenMs: number;
  wallMs: number;
  /** Written since the previous pass (pass 1: none measured, it saves everything). */
  pagesWritten: number;
  pagesSaved: number;
  planMs: number;
  pagesMs: number;
  bytesStored: number;
  /** The victim's store rate in the gap after this pass (tracked, no copy running); none after the last. */
  storesAfter?: StoreRate;
}

export interface PredumpCaseResult {
  bytes: number;
  pctPerSec: number;
  victimPages: number;
  passes: PassResult[];
  final: {
    /** Killed by the dump (frozen until its set was on disk), or let go once copied (--leave-running). */
    killed: boolean;
    frozenMs: number;
    wallMs: number;
    pagesWritten: number;
    pagesSaved: number;
    pagesInParent: number;
    stats: Record<string, number>;
  };
  storesUntracked: StoreRate;
  storesTracked: StoreRate;
  /** 1 - tracked / untracked, in stores per CPU second. */
  slowdown: number;
}

export interface CaseOptions {
  passes: number;
  intervalMs: number;
  level: number;
  /** The final dump's level (undefined: the tool's default). */
  finalLevel?: number | undefined;
  /** The final dump's catch-up pass (see src/dump/catch-up.ts; default on, as in the tool). */
  catchUp?: boolean;
  imagesDir: string;
  log: Logger;
  /** The final dump kills the victim (a migration's last step) instead of --leave-running. */
  kill?: boolean;
}

/** Runs the chain on a live victim at `pct`; leaves the victim running, untracked. */
export async function runPredumpCase(v: PredumpVictim, pct: number, o: CaseOptions): Promise<PredumpCaseResult> {
  v.target.write(`rate ${pct}\n`);
  await v.target.waitFor(`rate ${pct} ok`, 10_000);
  v.target.lines.length = 0; // the next case waits for its own answer
  await sleep(200); // the new rate settles (hot sets of the old one age out)
  const untracked = await storeRate(v, o.intervalMs);
  mkdirSync(o.imagesDir, { recursive: true });
  const passes: PassResult[] = [];
  let ended = false;
  try {
    for (let k = 1; k <= o.passes; k++) {
      const t = performance.now();
      const r = await preDump(
        { pid: v.pid, imagesDir: join(o.imagesDir, `pre-${k}`), ...(k > 1 ? { prevImagesDir: `../pre-${k - 1}` } : {}), compressionLevel: o.level },
        o.log,
      );
      const wallMs = performance.now() - t;
      const s = r.stats;
      // Between passes: the tracked store rate. The final dump follows the last pass at once,
      // as in `dump --iterative`: it saves what was written during that pass.
      const after = k < o.passes ? await storeRate(v, o.intervalMs) : undefined;
      passes.push({
        pass: k,
        frozenMs: s.frozenMs ?? 0,
        wallMs,
        pagesWritten: s.pagesWritten ?? 0,
        pagesSaved: s.pagesSaved ?? 0,
        planMs: s.planMs ?? 0,
        pagesMs: s.pagesMs ?? 0,
        bytesStored: s.bytesStored ?? 0,
        ...(after ? { storesAfter: after } : {}),
      });
    }
    const t = performance.now();
    const d = await dump({ pid: v.pid, imagesDir: join(o.imagesDir, 'final'), prevImagesDir: `../pre-${o.passes}`, leaveRunning: !o.kill, shellJob: true, trackMem: true, catchUp: o.catchUp ?? true, ...(o.finalLevel === undefined ? {} : { compressionLevel: o.finalLevel }) }, o.log);
    const wallMs = performance.now() - t;
    ended = true;
    const tracked = mean(passes.flatMap((p) => (p.storesAfter ? [p.storesAfter] : [])));
    return {
      bytes: v.bytes,
      pctPerSec: pct,
      victimPages: v.bytes / 4096,
      passes,
      final: {
        killed: d.killed,
        frozenMs: d.stats.frozenMs ?? 0,
        wallMs,
        pagesWritten: d.stats.pagesWritten ?? 0,
        pagesSaved: d.stats.pagesSaved ?? 0,
        pagesInParent: d.stats.pagesInParent ?? 0,
        stats: d.stats,
      },
      storesUntracked: untracked,
      storesTracked: tracked,
      slowdown: untracked.perCpuSec > 0 ? 1 - tracked.perCpuSec / untracked.perCpuSec : 0,
    };
  } finally {
    // A chain that broke off still has a tracker: end it, so the next case starts untracked.
    if (!ended && passes.length) await stopTracking(join(o.imagesDir, `pre-${passes.length}`), v.pid, o.log).catch(() => {});
    rmSync(o.imagesDir, { recursive: true, force: true });
  }
}
