// restore as a library call, from an image directory or from an archive read in place.
import { throwIfAborted } from '../errors.js';
import { meteredSource, type ImageSource } from '../images/source.js';
import { silentLogger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import type { RestoreOptions } from '../restore/context.js';
import type { RestoreResult } from '../restore/restore.js';
import { withImages, type ImagesFrom } from './images-from.js';
import { typedErrors, type ApiOptions } from './options.js';

export type RestoreApiOptions = Omit<RestoreOptions, 'imagesDir' | 'source'> & ImagesFrom & ApiOptions & { /** Test-only, as for dump. */ fault?: string };

/** Counts page data read: restore's progress (phase 'restore'; the total is not known up front). */
function metered(src: ImageSource, onProgress: ProgressFn | undefined): ImageSource {
  if (!onProgress) return src;
  let done = 0;
  return meteredSource(src, (n) => onProgress({ phase: 'restore', bytesDone: (done += n) }));
}

/**
 * Restores the process with its PID. With detach, resolves once it runs (its statistics);
 * without, once it exits (exitCode). The signal is checked before anything is created.
 */
export function restore(o: RestoreApiOptions): Promise<RestoreResult> {
  return typedErrors(async () => {
    throwIfAborted(o.signal, 'restore');
    const { restore: run } = await import('../restore/restore.js');
    const { log, fault, signal: _signal, onProgress, archive: _archive, imagesDir: _dir, ...opts } = o;
    return withImages(o, (src, name) => run({ ...opts, imagesDir: name, source: metered(src, onProgress) }, log ?? silentLogger, fault));
  });
}
