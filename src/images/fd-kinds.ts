// The kind-specific state of an fd in files-PID.json, one schema per kind: plain data, all
// of it validated on read. Times are {sec, nsec} (a remaining time or a deadline may not fit
// the 2^53 of a JSON number in nanoseconds); 64-bit values (counters, masks, epoll data) are
// hex strings.
import { arr, base64, bool, hex, int, literal, obj, opt, str, uint, SchemaError, type Check, type Infer } from './schema.js';

/** A ghost file's name: only ever one of ours, never a path that leads out of the set. */
export const ghostName: Check<string> = (v, p) => {
  if (typeof v !== 'string' || !/^ghost-\d+-\d+\.zst$/.test(v)) throw new SchemaError(p, 'expected a ghost file name (ghost-PID-FD.zst)');
  return v;
};

export const timespec = obj({
  sec: uint,
  nsec: (v, p) => {
    const n = uint(v, p);
    if (n >= 1e9) throw new SchemaError(p, 'expected nanoseconds below 1e9');
    return n;
  },
});
export type Timespec = Infer<typeof timespec>;

/** A unix socket name: a path, or an abstract name (its bytes after the leading NUL). */
export const unixName = (v: unknown, p: string) => {
  const n = obj({ path: opt(str), abstract: opt(base64) })(v, p);
  if ((n.path === undefined) === (n.abstract === undefined)) throw new SchemaError(p, 'expected exactly one of path and abstract');
  return n;
};

const inetAddr = obj({ addr: str, port: uint, scopeId: opt(uint), flowInfo: opt(uint) });

/** The socket options an image may hold (src/kernel/sockets.ts knows how to get and set each). */
export const SOCKET_OPTION_NAMES: readonly string[] = [
  'SO_REUSEADDR', 'SO_REUSEPORT', 'SO_KEEPALIVE', 'SO_BROADCAST', 'SO_OOBINLINE', 'SO_PRIORITY', 'SO_MARK', 'SO_RCVLOWAT',
  'SO_PASSCRED', 'SO_TIMESTAMP', 'SO_PEEK_OFF', 'SO_SNDBUF', 'SO_RCVBUF', 'SO_LINGER', 'SO_RCVTIMEO', 'SO_SNDTIMEO',
  'TCP_NODELAY', 'TCP_KEEPIDLE', 'TCP_KEEPINTVL', 'TCP_KEEPCNT', 'TCP_DEFER_ACCEPT', 'TCP_USER_TIMEOUT', 'TCP_FASTOPEN',
  'TCP_NOTSENT_LOWAT', 'IP_TOS', 'IP_TTL', 'IP_PKTINFO', 'IP_RECVERR', 'IP_FREEBIND', 'IP_TRANSPARENT', 'IP_MULTICAST_TTL',
  'IP_MULTICAST_LOOP', 'IPV6_V6ONLY', 'IPV6_UNICAST_HOPS', 'IPV6_RECVPKTINFO', 'IPV6_TCLASS', 'IPV6_TRANSPARENT', 'IPV6_FREEBIND',
];
const optionNames = new Set(SOCKET_OPTION_NAMES);

/** Socket options that differ from a fresh socket's, by name. */
const sockOptions: Check<Record<string, number>> = (v, p) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SchemaError(p, 'expected an object');
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!optionNames.has(k)) throw new SchemaError(`${p}.${k}`, 'unknown socket option');
    out[k] = int(x, `${p}.${k}`);
  }
  return out;
};

export const fifoState = obj({
  /** The FIFO's inode: its fds share one pipe. */
  id: uint,
  size: uint,
  /** Buffered data (on the first fd of the FIFO), unless processes outside hold it open too: then the pipe, data and all, outlives the dump. */
  data: opt(base64),
  heldOutside: opt(bool),
});

export const unixState = obj({
  type: literal('stream', 'dgram', 'seqpacket'),
  /** The socket's inode: how ends of one connection find each other in the image. */
  ino: uint,
  state: literal('unconnected', 'listening', 'connected'),
  name: opt(unixName),
  /** Bound to a path: the socket file's mode. */
  mode: opt(uint),
  backlog: opt(uint),
  /** Connected: the peer's inode when the peer is in the image; peerName: the name of a peer outside (datagram sockets only). */
  peer: opt(uint),
  peerName: opt(unixName),
  /** Connected to a peer that was closed: restored as a pair whose other end is closed at once. */
  peerGone: opt(bool),
  /** Accepted from this listener (inode, in the image): restored by connect + accept, which gives it the listener's name. */
  acceptedFrom: opt(uint),
  /** Bits of shutdown(2) in effect: 1 no more receiving, 2 no more sending. */
  shutdown: opt(uint),
  /** What this socket would read next: stream data in one piece, or each datagram / record. */
  queue: opt(arr(base64)),
  options: sockOptions,
});

/** An established TCP connection, as TCP_REPAIR reads it (sequence numbers are 32-bit). */
export const tcpConnection = obj({
  /** Where each queue starts: the first unacknowledged byte sent, the first unread byte received. */
  sendSeq: uint,
  recvSeq: uint,
  /** Sent but not acknowledged, then not sent yet (the last `unsent` bytes). */
  sendQueue: base64,
  unsent: uint,
  /** Received, not read by the process. */
  recvQueue: base64,
  /** What the handshake negotiated: MSS, tcpi_options bits (1 timestamps, 2 SACK, 4 window scaling), the scales. */
  mss: uint,
  tcpiOptions: uint,
  sndWscale: uint,
  rcvWscale: uint,
  /** The connection's timestamp clock (with timestamps on). */
  timestamp: opt(uint),
  window: obj({ sndWl1: uint, sndWnd: uint, maxWindow: uint, rcvWnd: uint, rcvWup: uint }),
});

const inetFields = obj({
  family: literal('ipv4', 'ipv6'),
  proto: literal('tcp', 'udp'),
  state: literal('unbound', 'bound', 'listening', 'connected', 'established'),
  local: opt(inetAddr),
  /** UDP connected, TCP established: its peer. */
  peer: opt(inetAddr),
  backlog: opt(uint),
  /** TCP established (--tcp-established). */
  tcp: opt(tcpConnection),
  options: sockOptions,
});

export const inetState: Check<Infer<typeof inetFields>> = (v, p) => {
  const s = inetFields(v, p);
  const established = s.state === 'established';
  if (established !== (s.tcp !== undefined)) throw new SchemaError(`${p}.tcp`, established ? 'missing: an established connection needs its TCP state' : 'only an established connection has TCP state');
  if (established && (s.proto !== 'tcp' || !s.local || !s.peer)) throw new SchemaError(p, 'an established connection is TCP, with local and peer addresses');
  if (s.tcp && s.tcp.unsent > Buffer.byteLength(s.tcp.sendQueue, 'base64')) throw new SchemaError(`${p}.tcp.unsent`, 'more unsent bytes than the send queue holds');
  return s;
};

export const eventfdState = obj({ count: hex, semaphore: bool });

export const epollState = obj({
  /** Every registered fd (by its number in the process), its events mask and its data. */
  items: arr(obj({ fd: uint, events: uint, data: hex })),
});

export const timerfdState = obj({
  clockid: uint,
  /** timerfd_settime flags: TFD_TIMER_ABSTIME 1, TFD_TIMER_CANCEL_ON_SET 2. */
  flags: uint,
  /** Expirations not read yet. */
  ticks: uint,
  /** Time left until the next expiry when dumped (zero: disarmed), and the period. */
  value: timespec,
  interval: timespec,
  /** Absolute timers: the deadline in the timer's clock, and the boot it belongs to. */
  deadline: opt(timespec),
  bootId: opt(str),
});

export const signalfdState = obj({ mask: hex });

export const inotifyState = obj({
  watches: arr(obj({ wd: uint, mask: uint, path: str, ino: uint })),
  /** Bytes of events that were queued, unread, at dump time (they are not restored). */
  queuedBytes: uint,
});

export const memfdState = obj({
  /** The memfd's inode: fds that opened one memfd apart (through /proc) share it again. */
  id: uint,
  /** The name given to memfd_create (without "memfd:"). */
  name: str,
  /** F_GET_SEALS. */
  seals: uint,
  mode: uint,
  size: uint,
  /** The content, on the first fd of the memfd (the others open that one again). */
  ghost: opt(ghostName),
});
