// Socket constants, sockaddr encoding, and the table of socket options criu-ts saves and
// restores. Values are x86_64 Linux uapi.
import { native } from './native.js';

export const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16, PACKET: 17 } as const;
export const SOCK = { STREAM: 1, DGRAM: 2, RAW: 3, SEQPACKET: 5, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const SOL = { SOCKET: 1, IP: 0, TCP: 6, UDP: 17, IPV6: 41 } as const;
export const IPPROTO = { TCP: 6, UDP: 17 } as const;
export const SO = {
  REUSEADDR: 2,
  TYPE: 3,
  SNDBUF: 7,
  RCVBUF: 8,
  ACCEPTCONN: 30,
  SNDBUFFORCE: 32,
  RCVBUFFORCE: 33,
  PROTOCOL: 38,
  DOMAIN: 39,
  PEEK_OFF: 42,
} as const;
export const TCP_INFO = 11;
export const MSG = { PEEK: 2, TRUNC: 0x20, DONTWAIT: 0x40, NOSIGNAL: 0x4000 } as const;
export const SHUT = { RD: 0, WR: 1, RDWR: 2 } as const;
/** ioctl: bytes waiting to be read (FIONREAD). */
export const SIOCINQ = 0x541b;

/** Kernel TCP states (include/net/tcp_states.h), as TCP_INFO and sock_diag report them. */
export const TCP_STATE_NAMES: Record<number, string> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'NEW_SYN_RECV',
};
export const TCP_STATE = { ESTABLISHED: 1, CLOSE: 7, LISTEN: 10 } as const;

// ---- addresses ----

export type UnixName = { path: string } | { abstract: Buffer } | null;

export function decodeUnixName(sa: Buffer): UnixName {
  if (sa.length <= 2) return null; // unnamed
  if (sa[2] === 0) return { abstract: sa.subarray(3) };
  const end = sa.indexOf(0, 2);
  return { path: sa.toString('utf8', 2, end < 0 ? sa.length : end) };
}

export function encodeUnixName(n: { path: string } | { abstract: Buffer }): Buffer {
  const body = 'path' in n ? Buffer.concat([Buffer.from(n.path), Buffer.from([0])]) : Buffer.concat([Buffer.from([0]), n.abstract]);
  if (body.length > 108) throw new Error(`unix socket name of ${body.length} bytes is longer than sun_path`);
  const sa = Buffer.alloc(2 + body.length);
  sa.writeUInt16LE(AF.UNIX, 0);
  body.copy(sa, 2);
  return sa;
}

/** Readable: "/run/x.sock", "@name" for abstract names (non-printable bytes escaped). */
export function unixNameString(n: UnixName): string {
  if (!n) return '(unnamed)';
  if ('path' in n) return n.path;
  return '@' + [...n.abstract].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

export interface InetAddr {
  addr: string;
  port: number;
  /** IPv6 only: the scope (interface index) and flow label. */
  scopeId?: number;
  flowInfo?: number;
}

export function decodeInet(sa: Buffer): InetAddr {
  const family = sa.readUInt16LE(0);
  const port = sa.readUInt16BE(2);
  if (family === AF.INET) return { addr: [...sa.subarray(4, 8)].join('.'), port };
  if (family === AF.INET6) {
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(sa.readUInt16BE(8 + i * 2).toString(16));
    const flowInfo = sa.readUInt32BE(4);
    const scopeId = sa.readUInt32LE(24);
    return { addr: compressV6(words), port, ...(scopeId ? { scopeId } : {}), ...(flowInfo ? { flowInfo } : {}) };
  }
  throw new Error(`not an inet address (family ${family})`);
}

function compressV6(words: string[]): string {
  // The longest run of zero words becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

function parseV6(s: string): Buffer {
  const out = Buffer.alloc(16);
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const parse = (p: string | undefined) => (p ? p.split(':') : []);
  let hw = parse(head);
  let tw = parse(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4).
  const v4 = (ws: string[]) => {
    const last = ws[ws.length - 1];
    if (last?.includes('.')) {
      const b = last.split('.').map(Number);
      ws.splice(ws.length - 1, 1, ((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16));
    }
    return ws;
  };
  if (tail === undefined) hw = v4(hw);
  else tw = v4(tw);
  const words = tail === undefined ? hw : [...hw, ...Array<string>(8 - hw.length - tw.length).fill('0'), ...tw];
  if (words.length !== 8) throw new Error(`bad IPv6 address ${s}`);
  words.forEach((w, i) => out.writeUInt16BE(parseInt(w, 16), i * 2));
  return out;
}

export function encodeInet(family: 'ipv4' | 'ipv6', a: InetAddr): Buffer {
  if (family === 'ipv4') {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF.INET, 0);
    sa.writeUInt16BE(a.port, 2);
    const parts = a.addr.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad IPv4 address ${a.addr}`);
    Buffer.from(parts).copy(sa, 4);
    return sa;
  }
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(AF.INET6, 0);
  sa.writeUInt16BE(a.port, 2);
  sa.writeUInt32BE(a.flowInfo ?? 0, 4);
  parseV6(a.addr).copy(sa, 8);
  sa.writeUInt32LE(a.scopeId ?? 0, 24);
  return sa;
}

export const inetString = (a: InetAddr, family: 'ipv4' | 'ipv6') => (family === 'ipv6' ? `[${a.addr}]:${a.port}` : `${a.addr}:${a.port}`);

// ---- options ----

/** int: an int; linger: onoff ? seconds : -1; timeval: microseconds. */
type OptionKind = 'int' | 'linger' | 'timeval';

export interface SockOption {
  name: string;
  level: number;
  opt: number;
  kind: OptionKind;
  /** Which sockets have it. */
  applies: (s: { family: number; type: number; protocol: number }) => boolean;
  /** Set through another option (the *FORCE variants, which take half the value getsockopt shows). */
  set?: { opt: number; halve: boolean };
}

const any = () => true;
const inet = (s: { family: number }) => s.family === AF.INET || s.family === AF.INET6;
const ipv4 = (s: { family: number }) => s.family === AF.INET;
const ipv6 = (s: { family: number }) => s.family === AF.INET6;
const tcp = (s: { family: number; protocol: number }) => inet(s) && s.protocol === IPPROTO.TCP;
/** Multicast options: the kernel refuses to set them on stream sockets (an accepted one reads 64, not 1). */
const ipv4Dgram = (s: { family: number; type: number }) => ipv4(s) && s.type !== SOCK.STREAM;

/**
 * What is saved: each option whose value differs from a fresh socket of the same family, type
 * and protocol (so defaults, and the buffer sizes the kernel tunes itself, are left alone).
 * SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, buffers, TCP_NODELAY, IPV6_V6ONLY and friends.
 */
export const SOCK_OPTIONS: SockOption[] = [
  { name: 'SO_REUSEADDR', level: SOL.SOCKET, opt: 2, kind: 'int', applies: any },
  { name: 'SO_REUSEPORT', level: SOL.SOCKET, opt: 15, kind: 'int', applies: inet },
  { name: 'SO_KEEPALIVE', level: SOL.SOCKET, opt: 9, kind: 'int', applies: inet },
  { name: 'SO_BROADCAST', level: SOL.SOCKET, opt: 6, kind: 'int', applies: inet },
  { name: 'SO_OOBINLINE', level: SOL.SOCKET, opt: 10, kind: 'int', applies: inet },
  { name: 'SO_PRIORITY', level: SOL.SOCKET, opt: 12, kind: 'int', applies: any },
  { name: 'SO_MARK', level: SOL.SOCKET, opt: 36, kind: 'int', applies: any },
  { name: 'SO_RCVLOWAT', level: SOL.SOCKET, opt: 18, kind: 'int', applies: any },
  { name: 'SO_PASSCRED', level: SOL.SOCKET, opt: 16, kind: 'int', applies: any },
  { name: 'SO_TIMESTAMP', level: SOL.SOCKET, opt: 29, kind: 'int', applies: any },
  { name: 'SO_PEEK_OFF', level: SOL.SOCKET, opt: SO.PEEK_OFF, kind: 'int', applies: (s) => s.family === AF.UNIX },
  { name: 'SO_SNDBUF', level: SOL.SOCKET, opt: SO.SNDBUF, kind: 'int', applies: any, set: { opt: SO.SNDBUFFORCE, halve: true } },
  { name: 'SO_RCVBUF', level: SOL.SOCKET, opt: SO.RCVBUF, kind: 'int', applies: any, set: { opt: SO.RCVBUFFORCE, halve: true } },
  { name: 'SO_LINGER', level: SOL.SOCKET, opt: 13, kind: 'linger', applies: any },
  { name: 'SO_RCVTIMEO', level: SOL.SOCKET, opt: 20, kind: 'timeval', applies: any },
  { name: 'SO_SNDTIMEO', level: SOL.SOCKET, opt: 21, kind: 'timeval', applies: any },
  { name: 'TCP_NODELAY', level: SOL.TCP, opt: 1, kind: 'int', applies: tcp },
  { name: 'TCP_KEEPIDLE', level: SOL.TCP, opt: 4, kind: 'int', applies: tcp },
  { name: 'TCP_KEEPINTVL', level: SOL.TCP, opt: 5, kind: 'int', applies: tcp },
  { name: 'TCP_KEEPCNT', level: SOL.TCP, opt: 6, kind: 'int', applies: tcp },
  { name: 'TCP_DEFER_ACCEPT', level: SOL.TCP, opt: 9, kind: 'int', applies: tcp },
  { name: 'TCP_USER_TIMEOUT', level: SOL.TCP, opt: 18, kind: 'int', applies: tcp },
  { name: 'TCP_FASTOPEN', level: SOL.TCP, opt: 23, kind: 'int', applies: tcp },
  { name: 'TCP_NOTSENT_LOWAT', level: SOL.TCP, opt: 25, kind: 'int', applies: tcp },
  { name: 'IP_TOS', level: SOL.IP, opt: 1, kind: 'int', applies: ipv4 },
  { name: 'IP_TTL', level: SOL.IP, opt: 2, kind: 'int', applies: ipv4 },
  { name: 'IP_PKTINFO', level: SOL.IP, opt: 8, kind: 'int', applies: ipv4 },
  { name: 'IP_RECVERR', level: SOL.IP, opt: 11, kind: 'int', applies: ipv4 },
  { name: 'IP_FREEBIND', level: SOL.IP, opt: 15, kind: 'int', applies: ipv4 },
  { name: 'IP_TRANSPARENT', level: SOL.IP, opt: 19, kind: 'int', applies: ipv4 },
  { name: 'IP_MULTICAST_TTL', level: SOL.IP, opt: 33, kind: 'int', applies: ipv4Dgram },
  { name: 'IP_MULTICAST_LOOP', level: SOL.IP, opt: 34, kind: 'int', applies: ipv4Dgram },
  { name: 'IPV6_V6ONLY', level: SOL.IPV6, opt: 26, kind: 'int', applies: ipv6 },
  { name: 'IPV6_UNICAST_HOPS', level: SOL.IPV6, opt: 16, kind: 'int', applies: ipv6 },
  { name: 'IPV6_RECVPKTINFO', level: SOL.IPV6, opt: 49, kind: 'int', applies: ipv6 },
  { name: 'IPV6_TCLASS', level: SOL.IPV6, opt: 67, kind: 'int', applies: ipv6 },
  { name: 'IPV6_TRANSPARENT', level: SOL.IPV6, opt: 75, kind: 'int', applies: ipv6 },
  { name: 'IPV6_FREEBIND', level: SOL.IPV6, opt: 78, kind: 'int', applies: ipv6 },
];


export function getOption(fd: number, o: SockOption): number {
  if (o.kind === 'int') return native.getsockopt(fd, o.level, o.opt, 4).readInt32LE(0);
  if (o.kind === 'linger') {
    const b = native.getsockopt(fd, o.level, o.opt, 8);
    return b.readInt32LE(0) ? b.readInt32LE(4) : -1;
  }
  const b = native.getsockopt(fd, o.level, o.opt, 16);
  return Number(b.readBigInt64LE(0)) * 1e6 + Number(b.readBigInt64LE(8));
}

export function setOption(fd: number, o: SockOption, v: number): void {
  let buf: Buffer;
  if (o.kind === 'int') {
    buf = Buffer.alloc(4);
    buf.writeInt32LE(o.set?.halve ? Math.floor(v / 2) : v, 0);
  } else if (o.kind === 'linger') {
    buf = Buffer.alloc(8);
    buf.writeInt32LE(v >= 0 ? 1 : 0, 0);
    buf.writeInt32LE(Math.max(v, 0), 4);
  } else {
    buf = Buffer.alloc(16);
    buf.writeBigInt64LE(BigInt(Math.floor(v / 1e6)), 0);
    buf.writeBigInt64LE(BigInt(v % 1e6), 8);
  }
  native.setsockopt(fd, o.level, o.set?.opt ?? o.opt, buf);
}

export function getInt(fd: number, level: number, opt: number): number {
  return native.getsockopt(fd, level, opt, 4).readInt32LE(0);
}

export function setInt(fd: number, level: number, opt: number, v: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  native.setsockopt(fd, level, opt, b);
}
