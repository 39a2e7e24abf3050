// `criu-ts check` as a library call: run the probe table (or one probe) and say what works.
// The table's order is the order of the report: the basics first, then what builds on them.
import { missingCaps, type CapName } from '../kernel/capabilities.js';
import { stubPath } from '../kernel/native.js';
import { silentLogger, type Logger } from '../log.js';
import { pagemapScanProbe, processVmProbe, uffdEventsProbe, uffdMissingProbe, uffdWpAsyncProbe } from './memory-probes.js';
import { runProbe, type Probe, type ProbeContext, type ProbeResult } from './probe.js';
import { clone3SetTidProbe, pidfdGetfdProbe, prctlMmMapProbe, ptraceProbe, rseqProbe, syscallCountProbe } from './process-probes.js';
import { zstdProbe } from './zstd-probe.js';
import { networkLockProbe, tcpRepairProbe, timerIdsProbe, unixDiagProbe } from './fd-probes.js';

export type { Probe, ProbeContext, ProbeResult, ProbeStatus } from './probe.js';

export const PROBES: readonly Probe[] = [
  ptraceProbe,
  pidfdGetfdProbe,
  processVmProbe,
  pagemapScanProbe,
  uffdWpAsyncProbe,
  uffdMissingProbe,
  uffdEventsProbe,
  clone3SetTidProbe,
  prctlMmMapProbe,
  rseqProbe,
  syscallCountProbe,
  unixDiagProbe,
  timerIdsProbe,
  tcpRepairProbe,
  networkLockProbe,
  zstdProbe,
];

export const PROBE_NAMES: readonly string[] = PROBES.map((p) => p.name);

/**
 * The capabilities dump and restore rely on: tracing processes of any user, and choosing
 * PIDs (CAP_SYS_ADMIN would do for that too, but CAP_CHECKPOINT_RESTORE is the narrow one).
 * Not CAP_SYS_RESOURCE: PR_SET_MM_MAP does without it, and root on some VMs lacks it.
 */
const WANTED_CAPS: readonly CapName[] = ['SYS_PTRACE', 'CHECKPOINT_RESTORE'];

export interface CheckOptions {
  /** Run only this probe (a name from PROBE_NAMES). */
  feature?: string;
  log?: Logger;
  /** Defaults to the stub built by npm install. */
  stubPath?: string;
  /** Test-only: report these probes missing without running them. */
  forceMissing?: ReadonlySet<string>;
}

export interface CheckReport {
  /** Every required probe that ran is ok (with `feature`: that probe is ok). */
  ok: boolean;
  probes: ProbeResult[];
  /** Names of required probes that failed. */
  requiredMissing: string[];
  /** Names of optional probes that failed. */
  optionalMissing: string[];
  /** Whether this process runs as root (euid 0). */
  root: boolean;
  /** Capabilities among those criu-ts relies on that this process lacks (CAP_...). */
  missingCapabilities: string[];
}

export class UnknownFeatureError extends Error {
  readonly code = 'EUSAGE';
  constructor(readonly feature: string) {
    super(`unknown feature '${feature}'; known features: ${PROBE_NAMES.join(', ')}`);
    this.name = 'UnknownFeatureError';
  }
}

export async function check(o: CheckOptions = {}): Promise<CheckReport> {
  const probes = o.feature === undefined ? PROBES : PROBES.filter((p) => p.name === o.feature);
  if (probes.length === 0) throw new UnknownFeatureError(o.feature!);
  const ctx: ProbeContext = { log: o.log ?? silentLogger, stubPath: o.stubPath ?? stubPath, forceMissing: o.forceMissing };
  const results: ProbeResult[] = [];
  // One after another: every probe ptraces from this thread, and each cleans up its child.
  for (const p of probes) results.push(await runProbe(p, ctx));
  const requiredMissing = results.filter((r) => r.required && r.status === 'missing').map((r) => r.name);
  const optionalMissing = results.filter((r) => !r.required && r.status === 'missing').map((r) => r.name);
  const ok = o.feature === undefined ? requiredMissing.length === 0 : results[0]!.status === 'ok';
  return {
    ok,
    probes: results,
    requiredMissing,
    optionalMissing,
    root: process.geteuid?.() === 0,
    missingCapabilities: missingCaps(WANTED_CAPS),
  };
}
