// Parsing helpers shared by the commands' parse() functions.
import { UsageError } from './errors.js';

export function requirePid(raw: unknown, flag: string): number {
  const n = typeof raw === 'string' ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} needs a process id, got ${JSON.stringify(raw)}`);
  return n;
}

export function requireString(raw: unknown, flag: string): string {
  if (typeof raw !== 'string' || raw === '') throw new UsageError(`${flag} is required`);
  return raw;
}

export function optionalInt(raw: unknown, flag: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} takes a whole number from ${min} to ${max}`);
  return n;
}
