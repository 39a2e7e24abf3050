// pack and unpack as library calls (the work is in src/pack; this adds the typed errors).
import type { PackOptions, PackResult } from '../pack/pack.js';
import type { UnpackOptions, UnpackResult } from '../pack/unpack.js';
import { typedErrors } from './options.js';

/** An image set and its parent chain as one tar stream, to a file or a stream. */
export function pack(o: PackOptions): Promise<PackResult> {
  return typedErrors(async () => (await import('../pack/pack.js')).pack(o));
}

/** An archive (file or stream) into a new directory, verified before it appears. */
export function unpack(o: UnpackOptions): Promise<UnpackResult> {
  return typedErrors(async () => (await import('../pack/unpack.js')).unpack(o));
}
