// native/sockets.cc and native/fdkinds.cc: the calls on success and their errno cases, and
// unix_diag (src/kernel/sock-diag.ts) on sockets of our own.
import { closeSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { unixDiag } from '../../src/kernel/sock-diag.js';
import { AF, decodeInet, decodeUnixName, encodeInet, encodeUnixName, getInt, MSG, SHUT, SIOCINQ, SO, SOCK, SOL } from '../../src/kernel/sockets.js';
import { errCode } from './util.js';

const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
});
const keep = (fd: number) => (fds.push(fd), fd);
const inode = (fd: number) => Number(/\d+/.exec(readlinkSync(`/proc/self/fd/${fd}`))![0]);

describe('sockets', () => {
  it('bind, listen, connect, names, send, peek, recv, shutdown over TCP on 127.0.0.1', () => {
    const l = keep(native.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    native.bind(l, encodeInet('ipv4', { addr: '127.0.0.1', port: 0 }));
    native.listen(l, 4);
    const at = decodeInet(native.getsockname(l));
    expect(at.addr).toBe('127.0.0.1');
    expect(at.port).toBeGreaterThan(0);
    expect(getInt(l, SOL.SOCKET, SO.ACCEPTCONN)).toBe(1);
    const c = keep(native.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    expect(errCode(() => native.getpeername(c))).toBe('ENOTCONN');
    native.connect(c, encodeInet('ipv4', at));
    expect(decodeInet(native.getpeername(c))).toEqual(at);
    expect(native.send(c, Buffer.from('xhello'), 1, 5, 0)).toBe(5);
    // The listener's accept queue holds it; the data waits in the server end, not readable here.
    const q = Buffer.alloc(4);
    native.ioctlBuffer(c, SIOCINQ, q);
    expect(q.readUInt32LE(0)).toBe(0);
    native.shutdown(c, SHUT.WR);
    expect(errCode(() => native.send(c, Buffer.from('x'), 0, 1, MSG.NOSIGNAL))).toBe('EPIPE');
  });

  it('a unix socketpair-like connection: peek leaves data in place, SO_PEEK_OFF walks it', () => {
    const path = { abstract: Buffer.from(`criu-ts-test-${process.pid}`) };
    const l = keep(native.socket(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0));
    native.bind(l, encodeUnixName(path));
    native.listen(l, 5);
    expect(decodeUnixName(native.getsockname(l))).toEqual(path);
    const c = keep(native.socket(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0));
    native.connect(c, encodeUnixName(path));
    // unix_diag: the listener has one connection waiting, the client a peer that has no file yet.
    const d = unixDiag(new Set([inode(l), inode(c)]));
    expect(d.get(inode(l))).toMatchObject({ state: 10, type: SOCK.STREAM, rqlen: { rqueue: 1, wqueue: 5 } });
    expect(d.get(inode(l))!.icons).toHaveLength(1);
    expect(d.get(inode(c))).toMatchObject({ state: 1, peer: expect.any(Number) as number });
    expect(d.get(inode(l))!.name).toEqual(Buffer.concat([Buffer.from([0]), path.abstract])); // sun_path as the kernel keeps it
  });

  it('setsockopt / getsockopt round trip; errors are errno-coded', () => {
    const s = keep(native.socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0));
    const v = Buffer.alloc(4);
    v.writeInt32LE(1, 0);
    native.setsockopt(s, SOL.SOCKET, 6 /* SO_BROADCAST */, v);
    expect(native.getsockopt(s, SOL.SOCKET, 6, 4).readInt32LE(0)).toBe(1);
    expect(errCode(() => native.socket(12345, SOCK.STREAM, 0))).toBe('EAFNOSUPPORT');
    expect(errCode(() => native.getsockopt(987654, SOL.SOCKET, SO.TYPE, 4))).toBe('EBADF');
    expect(errCode(() => native.bind(s, Buffer.alloc(2)))).toBe('EINVAL');
    expect(errCode(() => native.recv(s, Buffer.alloc(8), 0, MSG.DONTWAIT))).toBe('EAGAIN');
    expect(errCode(() => native.send(s, Buffer.alloc(8), 4, 8, 0))).toBe('EINVAL'); // past the buffer's end
    expect(errCode(() => native.listen(s, 1))).toBe('EOPNOTSUPP');
  });
});

describe('fdkinds', () => {
  it('clockGettime reads any clock; a bad clock is EINVAL', () => {
    const a = native.clockGettime(1);
    expect(native.clockGettime(1)).toBeGreaterThanOrEqual(a);
    expect(native.clockGettime(7)).toBeGreaterThan(0n);
    expect(errCode(() => native.clockGettime(12345))).toBe('EINVAL');
  });

  it('timerfdGettime, kcmpEpollTfd, openByHandleAt, ioctlBuffer refuse what is not theirs', () => {
    const s = keep(native.socket(AF.UNIX, SOCK.DGRAM | SOCK.CLOEXEC, 0));
    expect(errCode(() => native.timerfdGettime(s))).toBe('EINVAL');
    expect(errCode(() => native.kcmpEpollTfd(process.pid, process.pid, s, s, s, 0))).toBe('EINVAL');
    expect(errCode(() => native.openByHandleAt(987654, 1, Buffer.alloc(8), 0))).toBe('EBADF');
    expect(errCode(() => native.ioctlBuffer(987654, SIOCINQ, Buffer.alloc(4)))).toBe('EBADF');
  });
});
