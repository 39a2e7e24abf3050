// Sockets: created inside the restored process, then configured through a copy of ours (the
// same socket): options first (some only count before bind), bind, listen; then the
// connections; then the queued data, sent by the other end of each connection; last the
// shutdown state.
//
//   TCP, UDP       socket, options, bind (with SO_REUSEADDR for the bind alone if it was
//                  off: sockets of the dumped process may linger in TIME_WAIT), listen or
//                  connect (UDP); established TCP: after the listeners, see tcp.ts
//   unix listener  socket, options, bind (a stale socket file at the path is removed; any
//                  other file there is an error), mode, listen
//   unix pair      socketpair; an end accepted from a listener of the image: connect to the
//                  listener + accept, which gives the accepted end the listener's name
//   unix dgram     connected to a named socket: connect to the name again
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import type { FdEntry } from '../../images/files.js';
import { hasCode, native } from '../../kernel/native.js';
import { AF, encodeInet, encodeUnixName, inetString, IPPROTO, MSG, SHUT, SOCK, SOCK_OPTIONS, SO, SOL, setInt, setOption, unixNameString } from '../../kernel/sockets.js';
import { SYS } from '../../kernel/syscalls.js';
import { putBytes } from '../remote-args.js';
import { twoFds, type FdRestoreContext } from './context.js';
import { restoreConnection, startRepair } from './tcp.js';

type Unix = NonNullable<FdEntry['unix']>;
type Inet = NonNullable<FdEntry['inet']>;
type Name = NonNullable<Unix['name']>;

const UNIX_TYPES = { stream: SOCK.STREAM, dgram: SOCK.DGRAM, seqpacket: SOCK.SEQPACKET } as const;
const OPTION = new Map(SOCK_OPTIONS.map((o) => [o.name, o]));

const nameOf = (n: Name) => (n.path !== undefined ? { path: n.path } : { abstract: Buffer.from(n.abstract!, 'base64') });
const nameString = (n: Name | undefined) => unixNameString(n ? nameOf(n) : null);

function setOptions(ours: number, options: Record<string, number>, fd: number): void {
  for (const [name, v] of Object.entries(options)) {
    const o = OPTION.get(name);
    if (!o) throw new CriuError('EINVAL', `fd ${fd}: unknown socket option ${name}`);
    try {
      setOption(ours, o, v);
    } catch (err) {
      throw new CriuError((err as { code?: string }).code ?? 'EIO', `fd ${fd}: cannot set ${name} to ${v}: ${(err as Error).message}`, { cause: err });
    }
  }
}

export function restoreSockets(ctx: FdRestoreContext, fds: FdEntry[]): void {
  const todo = fds.filter((e) => e.dupOf === undefined && !ctx.place.temp.has(e.fd));
  // Connections after listeners: a listener's bind must not meet its connections' ports.
  const inet = todo.filter((e) => e.kind === 'inet');
  for (const e of [...inet.filter((e) => e.inet!.state !== 'established'), ...inet.filter((e) => e.inet!.state === 'established')]) ctx.place.temp.set(e.fd, createInet(ctx, e));
  restoreUnix(
    ctx,
    todo.filter((e) => e.kind === 'unix'),
  );
}

// ---- TCP, UDP ----

function createInet(ctx: FdRestoreContext, e: FdEntry): number {
  const s: Inet = e.inet!;
  const family = s.family === 'ipv6' ? AF.INET6 : AF.INET;
  const [type, proto] = s.proto === 'tcp' ? [SOCK.STREAM, IPPROTO.TCP] : [SOCK.DGRAM, IPPROTO.UDP];
  const fd = ctx.place.park(ctx.stub.remote.call(SYS.socket, 'socket', family, type, proto));
  ctx.withOurs(fd, (ours) => {
    setOptions(ours, s.options, e.fd);
    if (s.state === 'established') {
      startRepair(ours);
      bindInet(ours, s, e.fd);
      restoreConnection(ours, s, e.fd);
      return;
    }
    if (s.local) {
      const reuse = s.options.SO_REUSEADDR;
      if (!reuse) setInt(ours, SOL.SOCKET, SO.REUSEADDR, 1);
      bindInet(ours, s, e.fd);
      if (!reuse) setInt(ours, SOL.SOCKET, SO.REUSEADDR, 0);
    }
    if (s.state === 'listening') native.listen(ours, s.backlog ?? 128);
    if (s.state === 'connected' && s.peer) native.connect(ours, encodeInet(s.family, s.peer));
  });
  return fd;
}

function bindInet(ours: number, s: Inet, fd: number): void {
  try {
    native.bind(ours, encodeInet(s.family, s.local!));
  } catch (err) {
    throw new CriuError((err as { code?: string }).code ?? 'EIO', `fd ${fd}: cannot bind ${s.proto.toUpperCase()} ${inetString(s.local!, s.family)} again: ${(err as Error).message}`, { cause: err });
  }
}

// ---- unix ----

function restoreUnix(ctx: FdRestoreContext, entries: FdEntry[]): void {
  const byIno = new Map(entries.map((e) => [e.unix!.ino, e]));
  const made = new Map<number, number>(); // ino -> stub fd (parked)
  const r = ctx.stub.remote;
  const newSocket = (u: Unix) => ctx.place.park(r.call(SYS.socket, 'socket(AF_UNIX)', AF.UNIX, UNIX_TYPES[u.type], 0));
  const configure = (e: FdEntry, fd: number, bindName: boolean) =>
    ctx.withOurs(fd, (ours) => {
      setOptions(ours, e.unix!.options, e.fd);
      if (bindName && e.unix!.name) bindUnix(ours, e);
      if (e.unix!.state === 'listening') native.listen(ours, e.unix!.backlog ?? 128);
    });
  const connectTo = (fd: number, name: Name, what: string) => {
    const sa = encodeUnixName(nameOf(name));
    try {
      // Injected: the connection records the restored process as its peer (SO_PEERCRED).
      r.call(SYS.connect, 'connect', fd, putBytes(ctx.stub, sa), sa.length);
    } catch (err) {
      throw new CriuError((err as { code?: string }).code ?? 'EIO', `${what}: cannot connect to ${nameString(name)} again: ${(err as Error).message}`, { cause: err });
    }
  };

  // 1. Sockets that stand alone: listeners, unconnected ones, and those connected to a name.
  for (const e of entries) {
    const u = e.unix!;
    if (u.state === 'connected' && !u.peerName) continue;
    const fd = newSocket(u);
    configure(e, fd, true);
    if (u.peerName) connectTo(fd, u.peerName, `fd ${e.fd}`);
    made.set(u.ino, fd);
  }
  // 2. Connections with both ends here (or a peer that was closed).
  const pairs: Array<[FdEntry, FdEntry | undefined, number, number]> = []; // a, b, fd a, fd b (b undefined: peer gone)
  for (const e of entries) {
    const u = e.unix!;
    if (u.state !== 'connected' || u.peerName || made.has(u.ino)) continue;
    const peer = u.peer !== undefined ? byIno.get(u.peer) : undefined;
    if (u.peer !== undefined && !peer) throw new CriuError('EINVAL', `fd ${e.fd}: its peer socket:[${u.peer}] is not in the image`);
    if (peer && peer.unix!.peer !== u.ino) {
      // A datagram socket connected to one of ours that is not connected back: by its name.
      if (!peer.unix!.name) throw new CriuError('EINVAL', `fd ${e.fd}: connected to fd ${peer.fd}, which has no name to connect to`);
      continue; // after every named socket exists (step 3)
    }
    if (peer && made.has(peer.unix!.ino)) continue; // its pair is done
    const accepted = [e, peer].find((x) => x?.unix!.acceptedFrom !== undefined && made.has(x.unix!.acceptedFrom));
    if (peer && accepted) {
      // connect + accept: the accepted end gets the listener's name, as it had.
      const client = accepted === e ? peer : e;
      const listener = made.get(accepted.unix!.acceptedFrom!)!;
      const cfd = newSocket(client.unix!);
      configure(client, cfd, true);
      connectTo(cfd, byIno.get(accepted.unix!.acceptedFrom!)!.unix!.name!, `fd ${client.fd}`);
      const sfd = ctx.place.park(r.call(SYS.accept4, 'accept4', listener, 0, 0, 0));
      configure(accepted, sfd, false);
      made.set(client.unix!.ino, cfd).set(accepted.unix!.ino, sfd);
      pairs.push([client, accepted, cfd, sfd]);
      continue;
    }
    const [a, b] = twoFds(ctx.stub, (at) => r.call(SYS.socketpair, 'socketpair(AF_UNIX)', AF.UNIX, UNIX_TYPES[u.type], 0, at));
    const fa = ctx.place.park(a);
    const fb = ctx.place.park(b);
    // Names of datagram ends are theirs to have; a stream end's name is its listener's (gone).
    configure(e, fa, u.type === 'dgram');
    made.set(u.ino, fa);
    if (peer) {
      configure(peer, fb, u.type === 'dgram');
      made.set(peer.unix!.ino, fb);
    }
    pairs.push([e, peer, fa, fb]);
  }
  // 3. Datagram sockets connected one way to a named socket of ours.
  for (const e of entries) {
    const u = e.unix!;
    if (made.has(u.ino)) continue;
    const fd = newSocket(u);
    configure(e, fd, true);
    connectTo(fd, byIno.get(u.peer!)!.unix!.name!, `fd ${e.fd}`);
    made.set(u.ino, fd);
  }
  // 4. Queued data, sent by the other end; then shutdowns; a gone peer's end is closed.
  for (const [a, b, fa, fb] of pairs) {
    sendQueue(ctx, a, fb);
    if (b) sendQueue(ctx, b, fa);
  }
  for (const e of entries) {
    const how = e.unix!.shutdown;
    if (!how || e.unix!.peerGone) continue;
    ctx.withOurs(made.get(e.unix!.ino)!, (ours) => native.shutdown(ours, how === 3 ? SHUT.RDWR : how === 1 ? SHUT.RD : SHUT.WR));
  }
  for (const [, b, , fb] of pairs) if (!b) r.call(SYS.close, 'close', fb);
  for (const e of entries) ctx.place.temp.set(e.fd, made.get(e.unix!.ino)!);
}

function bindUnix(ours: number, e: FdEntry): void {
  const u = e.unix!;
  const name = u.name!;
  if (name.path !== undefined) {
    // A socket file left by the dumped process is stale: remove it. Anything else is not ours.
    try {
      const st = lstatSync(name.path);
      if (!st.isSocket()) throw new CriuError('EEXIST', `fd ${e.fd}: ${name.path} exists and is not a socket; cannot bind the unix socket there again`);
      unlinkSync(name.path);
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) throw err;
    }
  }
  try {
    native.bind(ours, encodeUnixName(nameOf(name)));
  } catch (err) {
    throw new CriuError((err as { code?: string }).code ?? 'EIO', `fd ${e.fd}: cannot bind unix socket ${nameString(name)} again: ${(err as Error).message}`, { cause: err });
  }
  if (name.path !== undefined) {
    // Its file had been removed after the bind: remove it again.
    if (u.mode === undefined) unlinkSync(name.path);
    else chmodSync(name.path, u.mode);
  }
}

/** Puts back what `e` would read, sent through the other end (`senderFd`, in the stub). */
function sendQueue(ctx: FdRestoreContext, e: FdEntry, senderFd: number): void {
  const q = e.unix!.queue;
  if (!q?.length) return;
  ctx.withOurs(senderFd, (ours) => {
    for (const piece of q) {
      const b = Buffer.from(piece, 'base64');
      let off = 0;
      do {
        try {
          off += native.send(ours, b, off, b.length - off, MSG.DONTWAIT | MSG.NOSIGNAL);
        } catch (err) {
          if (hasCode(err, 'EAGAIN')) throw new CriuError('ENOBUFS', `fd ${e.fd}: its queued data does not fit the new socket's buffers`, { cause: err });
          throw err;
        }
      } while (off < b.length && e.unix!.type === 'stream');
    }
  });
}
