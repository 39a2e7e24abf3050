// fdatasync on a thread of its own. A final dump flushes what it has written so far while
// it copies the rest, so that the flush at its end (which the frozen process waits for: this
// VM's disk holds writes in its host's cache until a flush, 13-19 ms for 36 MB) has little
// left to do. Not on the libuv pool: there a flush holds one of the four threads that the
// page-table walks and the reads of the copy need (tried: the copy got slower than the flush
// got faster). A thread that waits for the disk takes no core.
import { Worker } from 'node:worker_threads';
import { distModule } from '../paths.js';
import type { SyncReply, SyncRequest } from './sync-worker.js';

export class SyncThread {
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 0;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (r: SyncReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (!p) return;
      if (r.error) p.reject(Object.assign(new Error(`fdatasync: ${r.error}`), { code: r.error }));
      else p.resolve();
    });
    // Whatever is pending when the thread ends is settled, so that no caller waits forever
    // (a writer closes its fd once its flushes have settled).
    worker.on('error', (e) => this.failAll(e));
    worker.on('exit', () => this.failAll(new Error('fdatasync: the sync thread has ended')));
  }

  /** Started and answering (start-up takes tens of ms: before a freeze, not during it). */
  static async start(): Promise<SyncThread> {
    const t = new SyncThread(new Worker(distModule('images/sync-worker.js')));
    await t.fdatasync(-1).catch(() => {}); // EBADF: the round trip is the point
    return t;
  }

  /** fdatasync(fd) on the thread; the fd must stay open until this settles. */
  fdatasync(fd: number): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, fd } satisfies SyncRequest);
    });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
