// Errors with a stable `code` and the failing step as `cause`, for the CLI's one catch.
// No dependency on the addon: image code and the CLI use these too.

export class CriuError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CriuError';
    this.code = code;
  }
}

export function errorCode(e: unknown): string | undefined {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' ? (e as unknown as { code: string }).code : undefined;
}

/** Wraps a failure with the stage and pid it happened in, keeping it as `cause`. */
export function inStage(stage: string, pid: number | undefined, e: unknown): CriuError {
  if (e instanceof CriuError && e.message.startsWith(stage)) return e;
  const what = e instanceof Error ? e.message : String(e);
  return new CriuError(errorCode(e) ?? 'EFAIL', `${stage}${pid === undefined ? '' : ` (pid ${pid})`}: ${what}`, { cause: e });
}

/** Throws ECANCELED once `signal` has fired: long operations call it between their stages. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CriuError('ECANCELED', `${what}: cancelled`, { cause: signal.reason });
}

/** Any failure as a CriuError (its own code kept, else EFAIL), so API callers get one type. */
export function asCriuError(e: unknown): CriuError {
  if (e instanceof CriuError) return e;
  return new CriuError(errorCode(e) ?? 'EFAIL', e instanceof Error ? e.message : String(e), { cause: e });
}
