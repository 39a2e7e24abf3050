// The fd table's schema for the kinds of issue 7, without a kernel: each kind's state is
// checked on read (missing, misplaced, unknown fields and options refused); the pieces of
// policy that are pure (addresses, timer deadlines, /proc/PID/timers, show's words).
import { describe, expect, it } from 'vitest';
import { parseProcTimers } from '../../src/dump/collect-timers.js';
import { fdDetail, timerLines } from '../../src/images/describe-fds.js';
import { SOCKET_OPTION_NAMES } from '../../src/images/fd-kinds.js';
import { filesSchema, type FdEntry } from '../../src/images/files.js';
import { SchemaError } from '../../src/images/schema.js';
import { timersSchema } from '../../src/images/timers.js';
import { decodeInet, decodeUnixName, encodeInet, encodeUnixName, SOCK_OPTIONS } from '../../src/kernel/sockets.js';
import { timerfdValue } from '../../src/restore/fds/anon.js';
import { parseInheritFd } from '../../src/restore/fds/inherit.js';

const base = { flags: 2, cloexec: false };
const table = (...fds: unknown[]) => filesSchema({ pid: 42, fds }, '');
const problem = (...fds: unknown[]) => {
  try {
    table(...fds);
  } catch (e) {
    if (e instanceof SchemaError) return e.message;
    throw e;
  }
  return 'accepted';
};

const unix = { type: 'stream', ino: 7, state: 'listening', name: { path: '/run/x.sock' }, backlog: 5, options: { SO_REUSEADDR: 1 } };

describe('files-PID.json: the state of each kind', () => {
  it('accepts each kind with its state', () => {
    const fds = [
      { ...base, fd: 3, kind: 'unix', target: 'socket:[7]', unix },
      { ...base, fd: 4, kind: 'inet', target: 'socket:[8]', inet: { family: 'ipv6', proto: 'tcp', state: 'listening', local: { addr: '::1', port: 80 }, backlog: 9, options: {} } },
      { ...base, fd: 5, kind: 'eventfd', target: 'anon_inode:[eventfd]', eventfd: { count: '0x100000005', semaphore: false } },
      { ...base, fd: 6, kind: 'epoll', target: 'anon_inode:[eventpoll]', epoll: { items: [{ fd: 5, events: 0x80000019, data: '0xdeadbeef' }] } },
      { ...base, fd: 7, kind: 'timerfd', target: 'anon_inode:[timerfd]', timerfd: { clockid: 1, flags: 0, ticks: 2, value: { sec: 1, nsec: 5 }, interval: { sec: 0, nsec: 0 } } },
      { ...base, fd: 8, kind: 'signalfd', target: 'anon_inode:[signalfd]', signalfd: { mask: '0x200' } },
      { ...base, fd: 9, kind: 'inotify', target: 'anon_inode:inotify', inotify: { watches: [{ wd: 1, mask: 0x100, path: '/tmp', ino: 2 }], queuedBytes: 0 } },
      { ...base, fd: 10, kind: 'memfd', target: '/memfd:x (deleted)', memfd: { id: 9, name: 'x', seals: 1, mode: 0o777, size: 3, ghost: 'ghost-42-10.zst' } },
      { ...base, fd: 11, kind: 'fifo', target: '/tmp/f', path: '/tmp/f', fifo: { id: 3, size: 4096, data: 'aGk=' } },
      { ...base, fd: 12, kind: 'pipe', target: 'pipe:[5]', pipe: { id: 5, size: 0, outside: true } },
      { ...base, fd: 13, kind: 'unix', target: 'socket:[7]', dupOf: 3 },
    ];
    expect(table(...fds).fds).toHaveLength(fds.length);
  });

  it('holds an established TCP connection only whole', () => {
    const tcp = { sendSeq: 1, recvSeq: 4294967295, sendQueue: 'aGk=', unsent: 1, recvQueue: '', mss: 65483, tcpiOptions: 7, sndWscale: 7, rcvWscale: 7, timestamp: 5, window: { sndWl1: 1, sndWnd: 2, maxWindow: 3, rcvWnd: 4, rcvWup: 5 } };
    const conn = { family: 'ipv4', proto: 'tcp', state: 'established', local: { addr: '127.0.0.1', port: 1 }, peer: { addr: '127.0.0.1', port: 2 }, tcp, options: {} };
    const e = (inet: object) => ({ ...base, fd: 3, kind: 'inet', target: 'socket:[8]', inet });
    expect(problem(e(conn))).toBe('accepted');
    expect(problem(e({ ...conn, tcp: undefined }))).toBe('fds[0].inet.tcp: missing: an established connection needs its TCP state');
    expect(problem(e({ ...conn, state: 'bound' }))).toBe('fds[0].inet.tcp: only an established connection has TCP state');
    expect(problem(e({ ...conn, peer: undefined }))).toBe('fds[0].inet: an established connection is TCP, with local and peer addresses');
    expect(problem(e({ ...conn, tcp: { ...tcp, unsent: 3 } }))).toBe('fds[0].inet.tcp.unsent: more unsent bytes than the send queue holds');
  });

  it('refuses a kind without its state, a state of another kind, and dups upwards', () => {
    expect(problem({ ...base, fd: 3, kind: 'unix', target: 'socket:[7]' })).toBe('fds[0].unix: missing: a unix needs its state');
    expect(problem({ ...base, fd: 3, kind: 'eventfd', target: 'x', eventfd: { count: '0x1', semaphore: true }, unix })).toBe('fds[0].unix: state of a unix, but the fd is a eventfd');
    expect(problem({ ...base, fd: 3, kind: 'fifo', target: 'x', fifo: { id: 1, size: 0 } })).toBe('fds[0].path: missing: a fifo needs its path');
    expect(problem({ ...base, fd: 3, kind: 'unix', target: 'x', dupOf: 5 })).toBe('fds[0].dupOf: fd 3 can only be a dup of a lower fd');
  });

  it('refuses unknown socket options, bad names, bad counters and bad times', () => {
    const u = (over: object) => ({ ...base, fd: 3, kind: 'unix', target: 'x', unix: { ...unix, ...over } });
    expect(problem(u({ options: { SO_EVIL: 1 } }))).toBe('fds[0].unix.options.SO_EVIL: unknown socket option');
    expect(problem(u({ name: { path: '/a', abstract: 'AA==' } }))).toBe('fds[0].unix.name: expected exactly one of path and abstract');
    expect(problem(u({ extra: 1 }))).toBe('fds[0].unix.extra: unknown field');
    expect(problem({ ...base, fd: 3, kind: 'eventfd', target: 'x', eventfd: { count: 5, semaphore: true } })).toMatch(/eventfd.count: expected a hex string/);
    const tfd = { clockid: 1, flags: 0, ticks: 0, value: { sec: 1, nsec: 1e9 }, interval: { sec: 0, nsec: 0 } };
    expect(problem({ ...base, fd: 3, kind: 'timerfd', target: 'x', timerfd: tfd })).toBe('fds[0].timerfd.value.nsec: expected nanoseconds below 1e9');
    expect(problem({ ...base, fd: 3, kind: 'memfd', target: 'x', memfd: { id: 1, name: 'x', seals: 0, mode: 0, size: 0, ghost: '../etc/passwd' } })).toMatch(/ghost file name/);
  });

  it('names exactly the socket options the kernel table knows', () => {
    expect([...SOCKET_OPTION_NAMES].sort()).toEqual(SOCK_OPTIONS.map((o) => o.name).sort());
  });

  it('timers-PID.json', () => {
    const t = { pid: 1, itimers: { real: { value: { sec: 1, nsec: 0 }, interval: { sec: 0, nsec: 0 } } }, posix: [] };
    expect(timersSchema(t, '')).toEqual(t);
    expect(() => timersSchema({ ...t, posix: [{ id: 1 }] }, '')).toThrow('posix[0].clockid: expected a non-negative integer');
  });
});

describe('addresses', () => {
  it('round-trips IPv4, IPv6 (shortest form), path and abstract unix names', () => {
    expect(decodeInet(encodeInet('ipv4', { addr: '10.1.2.3', port: 8080 }))).toEqual({ addr: '10.1.2.3', port: 8080 });
    expect(decodeInet(encodeInet('ipv6', { addr: '::1', port: 1 }))).toEqual({ addr: '::1', port: 1 });
    expect(decodeInet(encodeInet('ipv6', { addr: 'fe80::1:0:0:2', port: 2, scopeId: 3 }))).toEqual({ addr: 'fe80::1:0:0:2', port: 2, scopeId: 3 });
    expect(decodeInet(encodeInet('ipv6', { addr: '::ffff:1.2.3.4', port: 5 })).addr).toBe('::ffff:102:304');
    expect(decodeUnixName(encodeUnixName({ path: '/run/a.sock' }))).toEqual({ path: '/run/a.sock' });
    expect(decodeUnixName(encodeUnixName({ abstract: Buffer.from('a\0b') }))).toEqual({ abstract: Buffer.from('a\0b') });
    expect(() => encodeUnixName({ path: 'x'.repeat(108) })).toThrow(/longer than sun_path/);
  });
});

describe('timerfd deadlines at restore', () => {
  const now = () => 1_000_000_000_000n;
  const t = (over: object) => ({ clockid: 1, flags: 0, ticks: 0, value: { sec: 5, nsec: 0 }, interval: { sec: 0, nsec: 0 }, ...over });
  it('a relative timer: its time left, from now', () => {
    expect(timerfdValue(t({}), now, 'b')).toBe(5_000_000_000n);
  });
  it('an absolute monotonic one: its deadline on the same boot, time left from now on another', () => {
    const abs = t({ flags: 1, deadline: { sec: 900, nsec: 7 }, bootId: 'b' });
    expect(timerfdValue(abs, now, 'b')).toBe(900_000_000_007n);
    expect(timerfdValue(abs, now, 'other boot')).toBe(1_005_000_000_000n);
  });
  it('an absolute realtime one: its deadline, whatever the boot', () => {
    expect(timerfdValue(t({ clockid: 0, flags: 1, deadline: { sec: 9, nsec: 0 }, bootId: 'b' }), now, 'x')).toBe(9_000_000_000n);
  });
});

describe('/proc/PID/timers', () => {
  it('reads ids, signals, values, targets and clocks', () => {
    const text = 'ID: 3\nsignal: 12/0000000000000077\nnotify: signal/tid.99\nClockID: 1\nID: 1\nsignal: 0/0000000000000000\nnotify: none/pid.99\nClockID: 0\n';
    expect(parseProcTimers(text)).toEqual([
      { id: 3, clockid: 1, notify: 'signal', tid: 99, signal: 12, value: '0x77' },
      { id: 1, clockid: 0, notify: 'none', signal: 0, value: '0x0' },
    ]);
    expect(() => parseProcTimers('ID: 1\nsignal: 12/0\nnotify: thread/pid.3\nClockID: 0\n')).toThrow('notifies by "thread": not supported yet');
  });
});

describe('--inherit-fd', () => {
  it('takes fd[N]:KEY of an open fd', () => {
    expect(parseInheritFd('fd[1]:pipe:[1234]')).toEqual({ fd: 1, key: 'pipe:[1234]' });
    expect(() => parseInheritFd('7:pipe:[1]')).toThrow('expected fd[N]:KEY');
    expect(() => parseInheritFd('fd[987654]:pipe:[1]')).toThrow('fd 987654 is not open in this process');
  });
});

describe('show', () => {
  it('puts each kind in words', () => {
    const e = (x: Partial<FdEntry>) => ({ fd: 3, flags: 2, cloexec: false, target: 'x', ...x }) as FdEntry;
    expect(fdDetail(e({ kind: 'unix', unix: unix as FdEntry['unix'] }))).toBe('stream listening on /run/x.sock, backlog 5 [SO_REUSEADDR]');
    expect(fdDetail(e({ kind: 'eventfd', eventfd: { count: '0x100000005', semaphore: true } }))).toBe('count 4294967301, semaphore');
    expect(fdDetail(e({ kind: 'signalfd', signalfd: { mask: '0x1000000200' } }))).toBe('signals 10 37');
    expect(fdDetail(e({ kind: 'pipe', pipe: { id: 1, size: 0, outside: true } }))).toMatch(/--inherit-fd/);
    expect(timerLines({ pid: 1, itimers: {}, posix: [{ id: 2, clockid: 1, notify: 'signal', signal: 14, value: '0x2', remaining: { sec: 1, nsec: 500000000 }, interval: { sec: 0, nsec: 0 } }] })).toEqual([
      'POSIX timer 2: CLOCK_MONOTONIC, signal 14, value 0x2, 1.5 s left',
    ]);
  });
});
