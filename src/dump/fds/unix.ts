// Unix sockets. sock_diag gives what getsockopt cannot: the peer (by inode), the connections
// waiting on a listener, its backlog, the shutdown state. Queued data is read without being
// consumed: SO_PEEK_OFF set to 0, then recv(MSG_PEEK) walks the queue one piece at a time
// (a datagram or a record per call, stream data in runs), as CRIU does; the socket's own
// peek offset is put back afterwards.
//
// Supported: socketpairs and connections with both ends in the process (stream, dgram,
// seqpacket), including a connection accepted from a listener in the process; listeners
// bound to a path or an abstract name; bound or unbound unconnected sockets; datagram
// sockets connected to a named socket outside (/dev/log); a connection whose peer was closed.
// Refused: a stream connection to a socket outside the process, connections waiting to be
// accepted, datagrams queued by senders the socket is not connected back to (only the other
// end of a connection can put data back), fds in flight (SCM_RIGHTS).
import { lstatSync } from 'node:fs';
import type { FdEntry } from '../../images/files.js';
import { hasCode, native } from '../../kernel/native.js';
import type { UnixDiag } from '../../kernel/sock-diag.js';
import { decodeUnixName, getInt, MSG, setInt, SO, SOCK, SOL, TCP_STATE, unixNameString, type UnixName } from '../../kernel/sockets.js';
import { fdinfoField, refused, type FdCollectContext } from './common.js';
import { changedOptions, type SockKind } from './sock-options.js';

type UnixState = NonNullable<FdEntry['unix']>;

const TYPES: Record<number, UnixState['type']> = { [SOCK.STREAM]: 'stream', [SOCK.DGRAM]: 'dgram', [SOCK.SEQPACKET]: 'seqpacket' };
const SHUTDOWN_MASK = 3;
/** Room for one datagram: larger ones than any buffer setting allows do not exist. */
const DGRAM_ROOM = 4 << 20;
const MAX_PIECES = 1_000_000;

export interface UnixPeers {
  /** Every unix socket of the process, by inode. */
  diag: ReadonlyMap<number, UnixDiag>;
}

const imageName = (n: UnixName): UnixState['name'] => (n === null ? undefined : 'path' in n ? { path: n.path } : { abstract: n.abstract.toString('base64') });
const sameName = (a: Buffer | undefined, b: Buffer | undefined) => !!a && !!b && a.equals(b);

export function collectUnix(ctx: FdCollectContext, fd: number, ours: number, k: SockKind, ino: number, peers: UnixPeers, fdinfo: string): UnixState {
  const d = peers.diag.get(ino);
  const type = TYPES[k.type];
  const what = `a unix ${type ?? `type-${k.type}`} socket (socket:[${ino}])`;
  if (!type) throw refused(ctx.pid, fd, what, 'not supported yet');
  if (!d) throw refused(ctx.pid, fd, what, 'sock_diag does not know it (another network namespace?)');
  if (Number(fdinfoField(fdinfo, 'scm_fds') ?? 0) > 0) throw refused(ctx.pid, fd, what, 'file descriptors are in flight in its queue (SCM_RIGHTS): not supported yet');
  const name = decodeUnixName(native.getsockname(ours));
  const s: UnixState = { type, ino, state: 'unconnected', options: changedOptions(ours, k) };
  if (name) s.name = imageName(name);
  if (name && 'path' in name) {
    // The socket file: its mode, or gone (unlinked since the bind).
    try {
      const st = lstatSync(name.path);
      if (st.isSocket() && d.vfs && st.ino === d.vfs.ino) s.mode = st.mode & 0o7777;
    } catch {
      /* removed: restored bound, and its file removed again */
    }
  }
  if (d.shutdown) s.shutdown = d.shutdown;

  if (d.state === TCP_STATE.LISTEN) {
    s.state = 'listening';
    s.backlog = d.rqlen?.wqueue ?? 128;
    const waiting = d.icons?.length ?? d.rqlen?.rqueue ?? 0;
    if (waiting) throw refused(ctx.pid, fd, `${what} listening on ${unixNameString(name)}`, `${waiting} connection(s) wait to be accepted: not supported yet`);
    return s;
  }

  // A datagram socket that others connected to shows as established too: only a peer of its own makes it connected.
  if (d.peer !== undefined || (type !== 'dgram' && d.state === TCP_STATE.ESTABLISHED)) {
    s.state = 'connected';
    const peer = d.peer ?? 0;
    if (peer && peers.diag.has(peer)) {
      s.peer = peer;
      // The end a listener of ours accepted carries the listener's name: connect + accept
      // at restore gives it that name again (a socketpair could not).
      const listener = [...peers.diag.values()].find((l) => l.state === TCP_STATE.LISTEN && sameName(l.name, d.name));
      if (listener && type !== 'dgram') s.acceptedFrom = listener.ino;
    } else if (type === 'dgram' && peer) {
      const pn = peerName(ours);
      if (!pn) throw refused(ctx.pid, fd, what, `connected to socket:[${peer}], an unnamed socket outside the process`);
      s.peerName = imageName(pn);
    } else if (!peer && (type === 'dgram' || (d.shutdown ?? 0) === SHUTDOWN_MASK)) {
      s.peerGone = true;
    } else {
      const pn = peerName(ours);
      throw refused(ctx.pid, fd, what, `connected to ${peer ? `socket:[${peer}]` : 'a socket'}${pn ? ` at ${unixNameString(pn)}` : ''} outside the process: not supported yet`);
    }
  }

  // An unconnected stream socket has no queue to read (recv would say so).
  const queue = s.state === 'connected' || type === 'dgram' ? peekQueue(ours, type) : [];
  if (queue.length) {
    // Data can only be put back by the other end of a connection both ends of which are ours.
    const mutual = s.peer !== undefined && peers.diag.get(s.peer)?.peer === ino;
    if (!mutual && !s.peerGone) {
      throw refused(ctx.pid, fd, what, `${queue.reduce((n, b) => n + b.length, 0)} bytes are queued on it by senders it is not connected back to, which a restore cannot put back: not supported yet`);
    }
    s.queue = queue.map((b) => b.toString('base64'));
  }
  return s;
}

function peerName(ours: number): UnixName {
  try {
    return decodeUnixName(native.getpeername(ours));
  } catch (e) {
    if (hasCode(e, 'ENOTCONN')) return null;
    throw e;
  }
}

/** Everything the socket would read next, left in place. */
function peekQueue(ours: number, type: UnixState['type']): Buffer[] {
  const saved = getInt(ours, SOL.SOCKET, SO.PEEK_OFF);
  setInt(ours, SOL.SOCKET, SO.PEEK_OFF, 0);
  try {
    const out: Buffer[] = [];
    const stream = type === 'stream';
    const buf = Buffer.alloc(stream ? 1 << 20 : DGRAM_ROOM);
    for (let i = 0; i < MAX_PIECES; i++) {
      let n: number;
      try {
        n = native.recv(ours, buf, 0, MSG.PEEK | MSG.DONTWAIT | (stream ? 0 : MSG.TRUNC));
      } catch (e) {
        if (hasCode(e, 'EAGAIN')) return stream && out.length ? [Buffer.concat(out)] : out;
        throw e;
      }
      if (stream && n === 0) return out.length ? [Buffer.concat(out)] : out; // end of stream: the peer shut down
      if (n > buf.length) throw new Error(`a datagram of ${n} bytes is larger than ${buf.length}`);
      out.push(Buffer.from(buf.subarray(0, n)));
    }
    throw new Error(`more than ${MAX_PIECES} messages queued`);
  } finally {
    setInt(ours, SOL.SOCKET, SO.PEEK_OFF, saved);
  }
}
