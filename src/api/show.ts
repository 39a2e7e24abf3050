// show as a library call: what `criu-ts show --json` prints, for a directory or an archive.
import type { SetSummary } from '../images/describe.js';
import { withImages, type ImagesFrom } from './images-from.js';
import { typedErrors } from './options.js';

export function show(o: ImagesFrom): Promise<SetSummary> {
  return typedErrors(async () => {
    const { describeSet } = await import('../images/describe.js');
    return withImages(o, async (src) => describeSet(src));
  });
}
