// What every restore stage gets.
import type { ImageSource } from '../images/source.js';
import type { Logger } from '../log.js';
import type { InheritFd } from './fds/inherit.js';

export interface RestoreOptions {
  imagesDir: string;
  /** Where the images come from when not the directory imagesDir (an archive read in place); imagesDir then only names them. */
  source?: ImageSource;
  /** -d: return once the process runs; otherwise stay its parent and return its exit status. */
  detach?: boolean;
  shellJob?: boolean;
  /** --inherit-fd fd[N]:KEY: the fds saved as KEY get this process's fd N (see restore/fds/inherit.ts). */
  inheritFds?: InheritFd[];
  /** Resume at once and fill private anonymous memory on demand through userfaultfd. */
  lazy?: boolean;
  /** Like lazy, but the pages are served by a separate `criu-ts lazy-pages -D` (CRIU's two-step use). */
  lazyPages?: boolean;
  /** Called once the process runs, before lazy pages are served (-d --lazy hands over here). */
  onResumed?: (pid: number, stats: Record<string, number>) => void;
}

export interface RestoreContext {
  opts: RestoreOptions;
  log: Logger;
  stats: Record<string, number>;
  fault: string | undefined;
}
