// Established TCP connections (--tcp-established): locked, put in repair mode, read. The
// sockets stay in repair mode for the rest of the dump, held by a copy of ours:
//   - the dump kills the process: its sockets close without FIN or RST (repair mode), the
//     lock stays, and the peer waits for the restore, none the wiser;
//   - --leave-running, or a failed dump: repair off (with a window probe, so a peer that
//     stalled meanwhile resumes) and the lock removed, before the process runs again.
import { closeSync } from 'node:fs';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { IPPROTO, TCP_INFO, type InetAddr } from '../../kernel/sockets.js';
import { maxSeg, peekQueue, QUEUE, queueLengths, queueSeq, REPAIR, repairWindow, setRepair, setRepairQueue, TCPI_OPT, timestamp } from '../../kernel/tcp-repair.js';
import type { Logger } from '../../log.js';
import type { NetworkLock } from '../../net/lock.js';

type TcpConnection = NonNullable<NonNullable<FdEntry['inet']>['tcp']>;

const F_DUPFD_CLOEXEC = 1030;

export class HeldConnections {
  /** Our copies of the sockets in repair mode. */
  private readonly held: number[] = [];

  constructor(
    readonly lock: NetworkLock,
    private readonly log: Logger,
  ) {}

  get count(): number {
    return this.held.length;
  }

  /** Locks the connection, turns repair on (kept until the dump ends), reads it whole. */
  collect(ours: number, family: 'ipv4' | 'ipv6', local: InetAddr, peer: InetAddr): TcpConnection {
    this.lock.lock({ family, local, peer });
    const fd = native.fcntl(ours, F_DUPFD_CLOEXEC, 0);
    this.held.push(fd);
    setRepair(fd, REPAIR.ON);
    const info = native.getsockopt(fd, IPPROTO.TCP, TCP_INFO, 104);
    const tcpiOptions = info.readUInt8(5);
    const len = queueLengths(fd);
    const sendEnd = queueSeq(fd, QUEUE.SEND);
    const sendQueue = peekQueue(fd, QUEUE.SEND, len.out);
    const recvEnd = queueSeq(fd, QUEUE.RECV);
    const recvQueue = peekQueue(fd, QUEUE.RECV, len.in);
    setRepairQueue(fd, QUEUE.NONE);
    return {
      sendSeq: (sendEnd - len.out) >>> 0,
      recvSeq: (recvEnd - len.in) >>> 0,
      sendQueue: sendQueue.toString('base64'),
      unsent: len.unsent,
      recvQueue: recvQueue.toString('base64'),
      mss: maxSeg(fd),
      tcpiOptions,
      sndWscale: info.readUInt8(6) & 0xf,
      rcvWscale: info.readUInt8(6) >> 4,
      ...(tcpiOptions & TCPI_OPT.TIMESTAMPS ? { timestamp: timestamp(fd) } : {}),
      window: repairWindow(fd),
    };
  }

  /** The processes were killed: their sockets closed quietly; ours go too. The lock stays for the restore. */
  closeKilled(): void {
    for (const fd of this.held.splice(0)) closeSync(fd);
  }

  /** The processes run on (--leave-running, or the dump failed): their connections as they were. */
  release(): void {
    try {
      this.lock.unlock();
    } catch (e) {
      this.log.warn(`${(e as Error).message}; remove it with: nft delete table inet ${this.lock.table}`);
    }
    for (const fd of this.held.splice(0)) {
      try {
        setRepair(fd, REPAIR.OFF);
      } catch (e) {
        this.log.warn(`could not turn TCP repair off on a connection of the dumped process: ${(e as Error).message}`);
      }
      closeSync(fd);
    }
  }
}
