// What every API function takes besides its own options, and the one rule of its errors:
// whatever fails comes out as a CriuError with a stable `code` and the failure as `cause`.
import { asCriuError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProgressFn } from '../progress.js';

export interface ApiOptions {
  /** Where messages go (default: nowhere). */
  log?: Logger;
  /** Cancels long work between its stages; the error then has code ECANCELED. */
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

export async function typedErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asCriuError(e);
  }
}
