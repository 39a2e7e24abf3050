// unix_diag over NETLINK_SOCK_DIAG: what /proc and getsockopt do not tell about a unix
// socket — its peer (which socket it is connected to, by inode), the connections waiting on
// a listener, the listener's backlog, and the shutdown state. One dump of every unix socket
// in the network namespace, filtered by the caller.
import { closeSync } from 'node:fs';
import { native } from './native.js';
import { AF, SOCK } from './sockets.js';

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const UDIAG_SHOW = { NAME: 1, VFS: 2, PEER: 4, ICONS: 8, RQLEN: 0x10 } as const;
const UNIX_DIAG = { NAME: 0, VFS: 1, PEER: 2, ICONS: 3, RQLEN: 4, SHUTDOWN: 6 } as const;

export interface UnixDiag {
  ino: number;
  type: number;
  /** TCP_* state numbers: 1 connected, 7 unconnected, 10 listening. */
  state: number;
  /** sun_path as the kernel keeps it: a path, or \0 + an abstract name. */
  name?: Buffer;
  /** The bound socket file (inode, device), when bound to a path. */
  vfs?: { ino: number; dev: number };
  /** The inode of the socket this one is connected to (0: its peer is gone or has no file). */
  peer?: number;
  /** Listeners: inodes of the connections not yet accepted. */
  icons?: number[];
  /** Listeners: rqueue = connections waiting, wqueue = backlog; others: bytes queued (rqueue). */
  rqlen?: { rqueue: number; wqueue: number };
  /** RCV_SHUTDOWN 1, SEND_SHUTDOWN 2. */
  shutdown?: number;
}

function request(): Buffer {
  const b = Buffer.alloc(16 + 24);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  b.writeUInt32LE(1, 8);
  b.writeUInt8(AF.UNIX, 16);
  b.writeUInt32LE(0xffffffff, 20); // every state
  b.writeUInt32LE(UDIAG_SHOW.NAME | UDIAG_SHOW.VFS | UDIAG_SHOW.PEER | UDIAG_SHOW.ICONS | UDIAG_SHOW.RQLEN, 28);
  b.writeUInt32LE(0xffffffff, 32); // no cookie
  b.writeUInt32LE(0xffffffff, 36);
  return b;
}

function parseMsg(b: Buffer): UnixDiag {
  const d: UnixDiag = { type: b.readUInt8(1), state: b.readUInt8(2), ino: b.readUInt32LE(4) };
  for (let off = 16; off + 4 <= b.length; ) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2);
    if (len < 4) break;
    const data = b.subarray(off + 4, off + len);
    if (type === UNIX_DIAG.NAME) d.name = Buffer.from(data);
    else if (type === UNIX_DIAG.VFS) d.vfs = { ino: data.readUInt32LE(0), dev: data.readUInt32LE(4) };
    else if (type === UNIX_DIAG.PEER) d.peer = data.readUInt32LE(0);
    else if (type === UNIX_DIAG.ICONS) d.icons = Array.from({ length: data.length / 4 }, (_, i) => data.readUInt32LE(i * 4));
    else if (type === UNIX_DIAG.RQLEN) d.rqlen = { rqueue: data.readUInt32LE(0), wqueue: data.readUInt32LE(4) };
    else if (type === UNIX_DIAG.SHUTDOWN) d.shutdown = data.readUInt8(0);
    off += (len + 3) & ~3;
  }
  return d;
}

/** Every unix socket of the namespace whose inode is in `inodes`, by inode. */
export function unixDiag(inodes: Set<number>): Map<number, UnixDiag> {
  const out = new Map<number, UnixDiag>();
  const fd = native.socket(16 /* AF_NETLINK */, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG);
  try {
    const req = request();
    native.send(fd, req, 0, req.length, 0);
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = native.recv(fd, buf, 0, 0);
      for (let off = 0; off + 16 <= n; ) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (len < 16 || off + len > n) throw new Error(`sock_diag: malformed netlink message of ${len} bytes`);
        if (type === NLMSG_DONE) return out;
        if (type === NLMSG_ERROR) {
          const err = -buf.readInt32LE(off + 16);
          if (err) throw Object.assign(new Error(`sock_diag(AF_UNIX): ${native.strerror(err)}`), { code: native.errnoName(err) });
        } else if (type === SOCK_DIAG_BY_FAMILY) {
          const d = parseMsg(buf.subarray(off + 16, off + len));
          if (inodes.has(d.ino)) out.set(d.ino, d);
        }
        off += (len + 3) & ~3;
      }
      if (n === 0) return out;
    }
  } finally {
    closeSync(fd);
  }
}
