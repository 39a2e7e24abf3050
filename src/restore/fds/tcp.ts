// Established TCP connections, put back with TCP_REPAIR. In two steps:
//
//   while the process is built   socket in repair mode (its port is ours again, whatever
//                                else holds it), bind, queue sequence numbers, connect (no
//                                handshake: the state is set), negotiated options, timestamp
//                                clock, the unread data into the receive queue, the sent
//                                but unacknowledged data into the send queue, the window
//   just before the process runs the network lock removed, repair off (a window probe
//                                tells the peer where we are), the unsent data sent as the
//                                process would have, SO_REUSEADDR again (repair mode had
//                                replaced it)
//
// Any failure before the second step leaves the sockets in repair mode: killed with the
// process, they close without a word to the peer, and the lock stays, so the restore can be
// tried again.
import { CriuError } from '../../errors.js';
import type { FdEntry, Files } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { encodeInet, getInt, inetString, MSG, SO, SOL, setInt } from '../../kernel/sockets.js';
import { fillQueue, QUEUE, REPAIR, setQueueSeq, setRepair, setRepairOptions, setRepairQueue, setRepairWindow, setTimestamp, TCPI_OPT, TCPOPT } from '../../kernel/tcp-repair.js';
import { TakenFds } from '../../kernel/taken-fds.js';
import type { Logger } from '../../log.js';
import { lockTable, unlockTable } from '../../net/lock.js';

type Inet = NonNullable<FdEntry['inet']>;
type TcpConnection = NonNullable<Inet['tcp']>;

const isEstablished = (e: FdEntry) => e.kind === 'inet' && e.inet!.state === 'established';

/** Repair mode on before bind: the port may be held by a listener of the same process. */
export function startRepair(ours: number): void {
  setRepair(ours, REPAIR.ON);
}

/** Room for `len` queued bytes (the kernel counts about twice the data): a buffer the size the dumped socket had reached. */
function roomFor(ours: number, opt: 'snd' | 'rcv', len: number): void {
  const [get, force] = opt === 'snd' ? [SO.SNDBUF, SO.SNDBUFFORCE] : [SO.RCVBUF, SO.RCVBUFFORCE];
  const want = 2 * len + 65536;
  if (getInt(ours, SOL.SOCKET, get) < want) setInt(ours, SOL.SOCKET, force, want / 2); // the kernel doubles it
}

/** The connection, on a socket already in repair mode and bound. */
export function restoreConnection(ours: number, s: Inet, fd: number): void {
  const t: TcpConnection = s.tcp!;
  const what = `fd ${fd} (TCP ${inetString(s.local!, s.family)} -> ${inetString(s.peer!, s.family)})`;
  try {
    const send = Buffer.from(t.sendQueue, 'base64');
    const recv = Buffer.from(t.recvQueue, 'base64');
    if (t.unsent > send.length) throw new Error(`${t.unsent} unsent bytes in a send queue of ${send.length}`);
    setQueueSeq(ours, QUEUE.RECV, t.recvSeq);
    setQueueSeq(ours, QUEUE.SEND, t.sendSeq);
    native.connect(ours, encodeInet(s.family, s.peer!));
    const opts: Array<[number, number]> = [[TCPOPT.MSS, t.mss]];
    if (t.tcpiOptions & TCPI_OPT.SACK) opts.push([TCPOPT.SACK_PERM, 0]);
    if (t.tcpiOptions & TCPI_OPT.WSCALE) opts.push([TCPOPT.WINDOW, t.sndWscale | (t.rcvWscale << 16)]);
    if (t.tcpiOptions & TCPI_OPT.TIMESTAMPS) opts.push([TCPOPT.TIMESTAMP, 0]);
    setRepairOptions(ours, opts);
    if (t.timestamp !== undefined) setTimestamp(ours, t.timestamp);
    roomFor(ours, 'rcv', recv.length);
    roomFor(ours, 'snd', send.length);
    fillQueue(ours, QUEUE.RECV, recv);
    fillQueue(ours, QUEUE.SEND, send.subarray(0, send.length - t.unsent));
    setRepairWindow(ours, t.window);
    setRepairQueue(ours, QUEUE.NONE);
  } catch (err) {
    throw new CriuError((err as { code?: string }).code ?? 'EIO', `${what}: cannot restore the connection: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The second step, for every process of the tree (`files` by pid, each restored and at its
 * final fd numbers). Returns how many connections were finished.
 */
export function finishConnections(rootPid: number, files: Map<number, Files>, log: Logger): number {
  const todo = [...files].flatMap(([pid, f]) => f.fds.filter((e) => isEstablished(e) && e.dupOf === undefined && !e.sharedWith).map((e) => ({ pid, e })));
  if (!todo.length) return 0;
  // The lock first: the window probe of each repair-off must reach the peer.
  if (unlockTable(lockTable(rootPid))) log.debug(`network unlocked (nft table inet ${lockTable(rootPid)} removed)`);
  for (const pid of new Set(todo.map((x) => x.pid))) {
    const taken = new TakenFds(pid);
    try {
      for (const { e } of todo.filter((x) => x.pid === pid)) taken.with(e.fd, (ours) => finishOne(ours, e));
    } finally {
      taken.close();
    }
  }
  return todo.length;
}

function finishOne(ours: number, e: FdEntry): void {
  const s = e.inet!;
  setRepair(ours, REPAIR.OFF);
  if (s.options.SO_REUSEADDR) setInt(ours, SOL.SOCKET, SO.REUSEADDR, s.options.SO_REUSEADDR);
  const send = Buffer.from(s.tcp!.sendQueue, 'base64');
  const unsent = send.subarray(send.length - s.tcp!.unsent);
  for (let off = 0; off < unsent.length; ) {
    try {
      off += native.send(ours, unsent, off, unsent.length - off, MSG.DONTWAIT | MSG.NOSIGNAL);
    } catch (err) {
      throw new CriuError((err as { code?: string }).code ?? 'EIO', `fd ${e.fd}: ${unsent.length - off} bytes the process had written could not be queued again: ${(err as Error).message}`, { cause: err });
    }
  }
}
