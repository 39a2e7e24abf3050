// TCP_REPAIR (include/uapi/linux/tcp.h): a socket in repair mode sends nothing, closes
// without FIN or RST, and lets its sequence numbers, queues, window and negotiated options be
// read and set. These are the calls, one to one; what to do with them is in
// src/dump/fds/tcp.ts and src/restore/fds/tcp.ts.
import { native } from './native.js';
import { getInt, MSG, SIOCINQ, SOL, setInt } from './sockets.js';

/** SOL_TCP option numbers. */
const OPT = { MAXSEG: 2, REPAIR: 19, REPAIR_QUEUE: 20, QUEUE_SEQ: 21, REPAIR_OPTIONS: 22, TIMESTAMP: 24, REPAIR_WINDOW: 29 } as const;

/** TCP_REPAIR values: off with a window probe (wakes the peer), off without one, on. */
export const REPAIR = { OFF: 0, OFF_NO_PROBE: -1, ON: 1 } as const;
export const QUEUE = { NONE: 0, RECV: 1, SEND: 2 } as const;
type Queue = (typeof QUEUE)[keyof typeof QUEUE];

/** ioctls: bytes not yet acknowledged by the peer (SIOCOUTQ), and of those, not yet sent. */
const SIOCOUTQ = 0x5411;
const SIOCOUTQNSD = 0x894b;

/** TCPOPT_* codes for TCP_REPAIR_OPTIONS. */
export const TCPOPT = { MSS: 2, WINDOW: 3, SACK_PERM: 4, TIMESTAMP: 8 } as const;
/** tcp_info.tcpi_options bits. */
export const TCPI_OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4 } as const;

export interface RepairWindow {
  sndWl1: number;
  sndWnd: number;
  maxWindow: number;
  rcvWnd: number;
  rcvWup: number;
}

export const setRepair = (fd: number, v: number) => setInt(fd, SOL.TCP, OPT.REPAIR, v);
export const setRepairQueue = (fd: number, q: Queue) => setInt(fd, SOL.TCP, OPT.REPAIR_QUEUE, q);

/** The queue's sequence number: write_seq (send) or rcv_nxt (receive). Needs repair mode. */
export function queueSeq(fd: number, q: Queue): number {
  setRepairQueue(fd, q);
  return getInt(fd, SOL.TCP, OPT.QUEUE_SEQ) >>> 0;
}

/** Sets where a queue starts; only before connect (state CLOSE). */
export function setQueueSeq(fd: number, q: Queue, seq: number): void {
  setRepairQueue(fd, q);
  const b = Buffer.alloc(4);
  b.writeUInt32LE(seq >>> 0, 0);
  native.setsockopt(fd, SOL.TCP, OPT.QUEUE_SEQ, b);
}

function ioctlInt(fd: number, req: number): number {
  const b = Buffer.alloc(4);
  native.ioctlBuffer(fd, req, b);
  return b.readInt32LE(0);
}

/** Queue lengths: unacknowledged, unsent (part of those) and unread bytes. */
export function queueLengths(fd: number): { out: number; unsent: number; in: number } {
  return { out: ioctlInt(fd, SIOCOUTQ), unsent: ioctlInt(fd, SIOCOUTQNSD), in: ioctlInt(fd, SIOCINQ) };
}

/** A copy of a whole queue (repair mode: MSG_PEEK reads the send queue too). */
export function peekQueue(fd: number, q: Queue, len: number): Buffer {
  setRepairQueue(fd, q);
  const b = Buffer.alloc(len);
  let got = 0;
  if (len) got = native.recv(fd, b, 0, MSG.PEEK | MSG.DONTWAIT);
  if (got !== len) throw new Error(`${q === QUEUE.SEND ? 'send' : 'receive'} queue: read ${got} of its ${len} bytes`);
  return b;
}

export const maxSeg = (fd: number) => getInt(fd, SOL.TCP, OPT.MAXSEG);
export const timestamp = (fd: number) => getInt(fd, SOL.TCP, OPT.TIMESTAMP) >>> 0;
export function setTimestamp(fd: number, v: number): void {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  native.setsockopt(fd, SOL.TCP, OPT.TIMESTAMP, b);
}

const WINDOW_FIELDS = ['sndWl1', 'sndWnd', 'maxWindow', 'rcvWnd', 'rcvWup'] as const;

export function repairWindow(fd: number): RepairWindow {
  const b = native.getsockopt(fd, SOL.TCP, OPT.REPAIR_WINDOW, 20);
  if (b.length !== 20) throw new Error(`TCP_REPAIR_WINDOW gave ${b.length} bytes, not 20`);
  return Object.fromEntries(WINDOW_FIELDS.map((k, i) => [k, b.readUInt32LE(i * 4)])) as unknown as RepairWindow;
}

export function setRepairWindow(fd: number, w: RepairWindow): void {
  const b = Buffer.alloc(20);
  WINDOW_FIELDS.forEach((k, i) => b.writeUInt32LE(w[k] >>> 0, i * 4));
  native.setsockopt(fd, SOL.TCP, OPT.REPAIR_WINDOW, b);
}

/** TCP_REPAIR_OPTIONS: what the handshake had negotiated, as {code, value} pairs. */
export function setRepairOptions(fd: number, opts: Array<[code: number, value: number]>): void {
  const b = Buffer.alloc(8 * opts.length);
  opts.forEach(([c, v], i) => {
    b.writeUInt32LE(c, i * 8);
    b.writeUInt32LE(v >>> 0, i * 8 + 4);
  });
  native.setsockopt(fd, SOL.TCP, OPT.REPAIR_OPTIONS, b);
}

/** Sends in repair mode into a queue (receive: straight into what the process will read). */
export function fillQueue(fd: number, q: Queue, data: Buffer): void {
  setRepairQueue(fd, q);
  for (let off = 0; off < data.length; ) off += native.send(fd, data, off, data.length - off, MSG.DONTWAIT | MSG.NOSIGNAL);
}
