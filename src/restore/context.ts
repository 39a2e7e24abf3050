// What every restore stage gets.
import type { Logger } from '../log.js';

export interface RestoreOptions {
  imagesDir: string;
  /** -d: return once the process runs; otherwise stay its parent and return its exit status. */
  detach?: boolean;
  shellJob?: boolean;
}

export interface RestoreContext {
  opts: RestoreOptions;
  log: Logger;
  stats: Record<string, number>;
  fault: string | undefined;
}
