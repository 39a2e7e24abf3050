// TCP and UDP sockets (IPv4, IPv6): listening, bound and unbound ones with their options, so
// that a restored server accepts new connections; connected UDP sockets; with
// --tcp-established, established TCP connections (see tcp.ts; without it the dump is refused
// with the connection named). Datagrams queued on a UDP socket are dropped (UDP may lose them
// anyway), with a note.
import type { FdEntry } from '../../images/files.js';
import { hasCode, native } from '../../kernel/native.js';
import { AF, decodeInet, inetString, IPPROTO, SIOCINQ, SOCK, TCP_INFO, TCP_STATE, TCP_STATE_NAMES, type InetAddr } from '../../kernel/sockets.js';
import { refused, type FdCollectContext } from './common.js';
import { changedOptions, type SockKind } from './sock-options.js';

type InetState = NonNullable<FdEntry['inet']>;

/** struct tcp_info: state at 0; for a listener tcpi_unacked (24) is the accept queue, tcpi_sacked (28) the backlog. */
function tcpInfo(ours: number): { state: number; acceptQueue: number; backlog: number } {
  const b = native.getsockopt(ours, IPPROTO.TCP, TCP_INFO, 104);
  return { state: b.readUInt8(0), acceptQueue: b.readUInt32LE(24), backlog: b.readUInt32LE(28) };
}

function peerOf(ours: number): InetAddr | undefined {
  try {
    return decodeInet(native.getpeername(ours));
  } catch (e) {
    if (hasCode(e, 'ENOTCONN')) return undefined;
    throw e;
  }
}

const isAny = (a: InetAddr) => a.addr === '0.0.0.0' || a.addr === '::';

export function collectInet(ctx: FdCollectContext, fd: number, ours: number, k: SockKind, ino: number): InetState {
  const family = k.family === AF.INET6 ? 'ipv6' : 'ipv4';
  const proto = k.type === SOCK.STREAM && k.protocol === IPPROTO.TCP ? 'tcp' : k.type === SOCK.DGRAM && k.protocol === IPPROTO.UDP ? 'udp' : undefined;
  const v = family === 'ipv6' ? 'IPv6' : 'IPv4';
  if (!proto) throw refused(ctx.pid, fd, `an ${v} socket of type ${k.type}, protocol ${k.protocol} (socket:[${ino}])`, 'not supported yet (TCP and UDP are)');
  const local = decodeInet(native.getsockname(ours));
  const bound = local.port !== 0 || !isAny(local);
  const s: InetState = { family, proto, state: bound ? 'bound' : 'unbound', ...(bound ? { local } : {}), options: changedOptions(ours, k) };
  const at = inetString(local, family);
  if (proto === 'tcp') {
    const t = tcpInfo(ours);
    if (t.state === TCP_STATE.LISTEN) {
      if (t.acceptQueue) {
        throw refused(ctx.pid, fd, `a TCP socket listening on ${at}`, `${t.acceptQueue} connection(s) wait to be accepted, which a restore cannot put back: not supported yet`);
      }
      return { ...s, state: 'listening', backlog: t.backlog };
    }
    if (t.state !== TCP_STATE.CLOSE) {
      const peer = peerOf(ours);
      const conn = `a TCP connection ${at} -> ${peer ? inetString(peer, family) : '?'} (${TCP_STATE_NAMES[t.state] ?? `state ${t.state}`})`;
      if (!ctx.tcp) throw refused(ctx.pid, fd, conn, 'established TCP connections are dumped only with --tcp-established');
      if (t.state !== TCP_STATE.ESTABLISHED || !peer) throw refused(ctx.pid, fd, conn, 'only ESTABLISHED connections can be moved yet');
      return { ...s, state: 'established', local, peer, tcp: ctx.tcp.collect(ours, family, local, peer) };
    }
    return s;
  }
  const peer = peerOf(ours);
  if (peer) Object.assign(s, { state: 'connected', peer });
  const queued = Buffer.alloc(4);
  native.ioctlBuffer(ours, SIOCINQ, queued);
  if (queued.readUInt32LE(0)) ctx.notes.push(`fd ${fd} (UDP ${at}): the datagrams queued on it are dropped`);
  return s;
}
