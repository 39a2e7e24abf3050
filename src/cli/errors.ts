// Exit codes and the one-line error message, decided in one place for every command.
import { CommanderError } from 'commander';
import { errorCode } from '../errors.js';

export const EXIT = {
  OK: 0,
  /** The command ran and failed (or, for check, a required feature is missing). */
  FAILURE: 1,
  /** Bad command line: unknown option or feature, missing argument. */
  USAGE: 2,
} as const;

/** A command line that cannot be acted on. */
export class UsageError extends Error {
  readonly code = 'EUSAGE';
  override name = 'UsageError';
}

export function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  return errorCode(e) === 'EUSAGE' ? EXIT.USAGE : EXIT.FAILURE;
}

export interface FormatOptions {
  /** Add the stack and the chain of causes (verbosity 4). */
  stack: boolean;
  /** Whether we run as root: a refusal otherwise most likely means "run as root". */
  root: boolean;
}

/** `criu-ts: <message>` on one line, unless the stack was asked for. */
export function formatError(e: unknown, o: FormatOptions): string {
  const raw = e instanceof Error ? e.message : String(e);
  const message = (e instanceof CommanderError ? raw.replace(/^error: /, '') : raw).replace(/\s*\n\s*/g, ' ');
  // A refused syscall, not a file we cannot open (those name their path: the path is the hint).
  const refused = ['EPERM', 'EACCES'].includes(errorCode(e) ?? '') && typeof (e as { path?: unknown }).path !== 'string';
  let text = `criu-ts: ${message}${refused && !o.root ? ' (not running as root: criu-ts needs root)' : ''}`;
  if (o.stack) {
    for (let c: unknown = e; c instanceof Error; c = c.cause) {
      text += `\n${c === e ? '' : 'caused by: '}${c.stack ?? c.message}`;
    }
  }
  return text;
}
