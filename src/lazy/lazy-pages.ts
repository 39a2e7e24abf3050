// `criu-ts lazy-pages -D DIR`: the page server on its own, for CRIU's two-step use with
// `criu-ts restore -D DIR --lazy-pages`. It reads the set itself, waits for the restorer's
// offer on DIR/lazy-pages.sock, guards the uffd, and serves until all memory is in.
import { CriuError } from '../errors.js';
import { loadChain, openChainReaders, resolvePages } from '../images/imageset.js';
import type { Logger } from '../log.js';
import { Guardian } from './guardian.js';
import { takeOffer } from './handoff.js';
import { lazyRanges, pendingFor, splitSegments } from './memory.js';
import { serveLazy } from './serve.js';
import type { LazyStats } from './server.js';

export async function lazyPages(imagesDir: string, log: Logger): Promise<LazyStats & { pid: number }> {
  const chain = loadChain(imagesDir);
  const set = chain[0]!;
  if (set.pstree.processes.length !== 1) throw new CriuError('ENOTSUP', 'process trees are not supported yet');
  const pid = set.inventory.rootPid;
  const readers = openChainReaders(chain, pid);
  try {
    const ranges = lazyRanges(set.mms.get(pid)!);
    const pending = pendingFor(ranges, splitSegments(resolvePages(readers, pid), ranges).inside);
    const guardian = Guardian.start(log.fd);
    let fd: number;
    try {
      log.info(`waiting for the restore of pid ${pid} on ${imagesDir}/lazy-pages.sock`);
      ({ fd } = await takeOffer(imagesDir, (offer, taken) => {
        if (offer.pid !== pid) throw new CriuError('EINVAL', `offered pid ${offer.pid}, but ${imagesDir} holds pid ${pid}`);
        guardian.hold(taken);
        guardian.watch(offer.pid);
      }));
    } catch (e) {
      guardian.done();
      throw e;
    }
    return { pid, ...serveLazy({ log, guardian, spaces: [{ pid, fd, pending, readers }] }) };
  } finally {
    for (const r of readers) r.close();
  }
}
