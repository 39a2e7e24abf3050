// A thread that only runs fdatasync: see SyncThread.
import { fdatasyncSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface SyncRequest {
  id: number;
  fd: number;
}

export interface SyncReply {
  id: number;
  /** The errno name of a failure. */
  error?: string;
}

parentPort!.on('message', (r: SyncRequest) => {
  try {
    fdatasyncSync(r.fd);
    parentPort!.postMessage({ id: r.id } satisfies SyncReply);
  } catch (e) {
    parentPort!.postMessage({ id: r.id, error: (e as NodeJS.ErrnoException).code ?? String(e) } satisfies SyncReply);
  }
});
