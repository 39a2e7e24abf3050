// Which capabilities this process holds, from /proc/self/status (CapEff), so that a refusal
// can name what is missing instead of only saying EPERM.
import { readFileSync } from 'node:fs';

/** The capabilities criu-ts relies on, by number (linux/capability.h). */
export const CAP = {
  NET_ADMIN: 12,
  SYS_PTRACE: 19,
  SYS_ADMIN: 21,
  SYS_RESOURCE: 24,
  CHECKPOINT_RESTORE: 40,
} as const;
export type CapName = keyof typeof CAP;

/** The effective capability set of `pid` (default: this process). */
export function effectiveCaps(pid: number | 'self' = 'self'): bigint {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) throw new Error(`/proc/${pid}/status: no CapEff line`);
  return BigInt('0x' + m[1]!);
}

export function hasCap(caps: bigint, name: CapName): boolean {
  return ((caps >> BigInt(CAP[name])) & 1n) === 1n;
}

/** The names among `wanted` that `caps` lacks, spelled as in capabilities(7). */
export function missingCaps(wanted: readonly CapName[], caps: bigint = effectiveCaps()): string[] {
  return wanted.filter((n) => !hasCap(caps, n)).map((n) => `CAP_${n}`);
}
