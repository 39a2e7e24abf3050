// restore and show as library calls, from an image directory or from an archive read in
// place (`--archive`): the archive is opened, verified, handed over as the image source and
// closed again when the call returns.
import type { RestoreOptions } from '../restore/context.js';
import type { RestoreResult } from '../restore/restore.js';
import type { SetSummary } from '../images/describe.js';
import { meteredSource, sourceOf, type ImageSource } from '../images/source.js';
import { CriuError, throwIfAborted } from '../errors.js';
import { silentLogger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import { typedErrors, type ApiOptions } from './options.js';

/** Exactly one of the two: a directory, or an archive file (made by pack). */
export interface ImagesFrom {
  imagesDir?: string;
  archive?: string;
}

export type RestoreApiOptions = Omit<RestoreOptions, 'imagesDir' | 'source'> & ImagesFrom & ApiOptions & { /** Test-only, as for dump. */ fault?: string };

async function withImages<T>(from: ImagesFrom, fn: (src: ImageSource, name: string) => Promise<T>): Promise<T> {
  if ((from.imagesDir === undefined) === (from.archive === undefined)) {
    throw new CriuError('EINVAL', 'give the images as imagesDir or as archive (exactly one)');
  }
  if (from.imagesDir !== undefined) return fn(sourceOf(from.imagesDir), from.imagesDir);
  const { Archive } = await import('../pack/archive.js');
  const archive = Archive.open(from.archive!);
  try {
    return await fn(archive.root(), from.archive!);
  } finally {
    archive.close();
  }
}

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

/** What an image set (or an archive's) holds: what `criu-ts show --json` prints. */
export function show(o: ImagesFrom): Promise<SetSummary> {
  return typedErrors(async () => {
    const { describeSet } = await import('../images/describe.js');
    return withImages(o, async (src) => describeSet(src));
  });
}
