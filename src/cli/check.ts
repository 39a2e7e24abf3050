// `criu-ts check [--feature NAME] [--json]`: does this kernel, and this user, have what
// criu-ts needs? Each probe does the thing once on a throwaway child (src/check/).
import type { Command } from 'commander';
import type { CheckReport, ProbeResult } from '../check/index.js';
import { defineCommand } from './command.js';
import { EXIT, UsageError } from './errors.js';

export interface CheckCliOptions {
  feature?: string;
}

/** Test-only fault switch: comma-separated probe names to report missing without running. */
export const FORCE_MISSING_ENV = 'CRIU_TS_FORCE_MISSING';

export default defineCommand<CheckCliOptions, CheckReport>({
  name: 'check',
  summary: 'check that this kernel and user have what dump and restore need',
  help: [
    '',
    'Each probe does the real thing once on a throwaway child process; none reads a version.',
    'Exits 0 when every required feature is present (with --feature: when that one is).',
  ].join('\n'),
  configure(cmd: Command) {
    cmd.option('--feature <name>', 'check only this feature (see the names in the full report)');
  },
  parse(raw) {
    if (raw.feature === undefined) return {};
    if (typeof raw.feature !== 'string' || raw.feature === '') throw new UsageError('--feature needs a feature name');
    return { feature: raw.feature };
  },
  async run(o, ctx) {
    // Imported here so that `criu-ts --help` works even where the addon is not built.
    // An unknown --feature throws UnknownFeatureError, whose code EUSAGE makes it exit 2.
    const { check } = await import('../check/index.js');
    const forced = ctx.env[FORCE_MISSING_ENV];
    return check({
      feature: o.feature,
      log: ctx.log,
      forceMissing: forced ? new Set(forced.split(',').map((s) => s.trim())) : undefined,
    });
  },
  render: renderReport,
  json: (report) => report,
  exitCode: (report) => (report.ok ? EXIT.OK : EXIT.FAILURE),
});

function statusLine(r: ProbeResult, width: number): string {
  return `${r.name.padEnd(width)}  ${r.status === 'ok' ? 'ok     ' : 'missing'}  ${r.reason}`;
}

/** One line per probe, then either `Looks good.` or what will not work and why. */
export function renderReport(report: CheckReport): string[] {
  const width = Math.max(...report.probes.map((p) => p.name.length));
  const lines = report.probes.map((r) => statusLine(r, width));
  const missing = report.probes.filter((r) => r.status === 'missing');
  if (missing.length === 0) return [...lines, 'Looks good.'];
  const caps = report.missingCapabilities.join(', ');
  if (!report.root) lines.push(`Not running as root${caps ? `: ${caps} missing` : ''}.`);
  else if (caps) lines.push(`Running as root without ${caps}.`);
  for (const r of missing) {
    lines.push(`${r.required ? 'Required' : 'Optional'} feature ${r.name} is missing: ${r.affects} will not work.`);
  }
  if (report.requiredMissing.length) {
    lines.push(`criu-ts cannot work here: missing ${report.requiredMissing.join(', ')}${report.root ? '' : ' (run it as root)'}.`);
  }
  return lines;
}
