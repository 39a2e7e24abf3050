// Taking a process's fds into ours: a pidfd kept open for a whole stage, so each fd taken
// (pidfd_getfd) costs one call. Both the dump (the target's fds) and the restore (the
// stub's) look at objects this way.
import { closeSync } from 'node:fs';
import { native } from './native.js';

export class TakenFds {
  private readonly pidfd: number;
  constructor(pid: number) {
    this.pidfd = native.pidfdOpen(pid);
  }

  /** Runs fn with the process's fd copied into ours (the same open file), closed afterwards. */
  with<T>(fd: number, fn: (ours: number) => T): T {
    const ours = native.pidfdGetfd(this.pidfd, fd);
    try {
      return fn(ours);
    } finally {
      closeSync(ours);
    }
  }

  close(): void {
    closeSync(this.pidfd);
  }
}
