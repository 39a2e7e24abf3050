// Errors with a stable `code` and the failing step as `cause`, for the CLI's one catch.
import { native } from './native.js';

export class CriuError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CriuError';
    this.code = code;
  }
}

/** An injected syscall's -errno as an Error shaped like the addon's own. */
export function remoteErrno(errno: number, call: string): Error {
  const code = native.errnoName(errno);
  const e = new Error(`${call}: ${native.strerror(errno)} (${code})`) as Error & {
    code: string;
    errno: number;
    syscall: string;
  };
  e.code = code;
  e.errno = errno;
  e.syscall = call;
  return e;
}

/** Wraps a failure with the stage and pid it happened in, keeping it as `cause`. */
export function inStage(stage: string, pid: number | undefined, e: unknown): CriuError {
  if (e instanceof CriuError && e.message.startsWith(stage)) return e;
  const code = e instanceof Error && typeof (e as { code?: unknown }).code === 'string' ? (e as unknown as { code: string }).code : 'EFAIL';
  const what = e instanceof Error ? e.message : String(e);
  return new CriuError(code, `${stage}${pid === undefined ? '' : ` (pid ${pid})`}: ${what}`, { cause: e });
}
