// One line of words for each fd's saved state, and for the timers, for `criu-ts show`.
import type { FdEntry } from './files.js';
import type { Timers } from './timers.js';
import type { Timespec } from './fd-kinds.js';

const CLOCKS: Record<number, string> = {
  0: 'CLOCK_REALTIME',
  1: 'CLOCK_MONOTONIC',
  2: 'CLOCK_PROCESS_CPUTIME_ID',
  3: 'CLOCK_THREAD_CPUTIME_ID',
  4: 'CLOCK_MONOTONIC_RAW',
  5: 'CLOCK_REALTIME_COARSE',
  6: 'CLOCK_MONOTONIC_COARSE',
  7: 'CLOCK_BOOTTIME',
  8: 'CLOCK_REALTIME_ALARM',
  9: 'CLOCK_BOOTTIME_ALARM',
};

const secs = (t: Timespec) => `${(t.sec + t.nsec / 1e9).toFixed(3).replace(/\.?0+$/, '')} s`;
const bytes = (n: number) => `${n} byte${n === 1 ? '' : 's'}`;
const b64len = (s: string) => Buffer.from(s, 'base64').length;

function unixName(n: { path?: string; abstract?: string } | undefined): string {
  if (!n) return '';
  return n.path ?? `@${Buffer.from(n.abstract!, 'base64').toString('latin1')}`;
}

function options(o: Record<string, number>): string {
  const e = Object.entries(o);
  return e.length ? ` [${e.map(([k, v]) => (v === 1 ? k : `${k}=${v}`)).join(' ')}]` : '';
}

const EPOLL_BITS: Array<[number, string]> = [
  [0x1, 'IN'],
  [0x2, 'PRI'],
  [0x4, 'OUT'],
  [0x2000, 'RDHUP'],
  [0x10000000, 'EXCLUSIVE'],
  [0x20000000, 'WAKEUP'],
  [0x40000000, 'ONESHOT'],
  [0x80000000, 'ET'],
];

/** What the fd holds, beyond its kind and target: "3 bytes buffered", "listening on ...". */
export function fdDetail(e: FdEntry): string {
  if (e.dupOf !== undefined) return `dup of fd ${e.dupOf}`;
  switch (e.kind) {
    case 'pipe': {
      const p = e.pipe!;
      if (p.outside) return 'other end outside the process (restore with --inherit-fd)';
      return p.data ? `${bytes(b64len(p.data))} buffered` : '';
    }
    case 'fifo': {
      const f = e.fifo!;
      return f.heldOutside ? 'held open outside too (its data stays in the kernel)' : f.data ? `${bytes(b64len(f.data))} buffered` : '';
    }
    case 'unix': {
      const u = e.unix!;
      const queued = (u.queue ?? []).reduce((n, q) => n + b64len(q), 0);
      const where =
        u.state === 'listening'
          ? `listening on ${unixName(u.name)}, backlog ${u.backlog}`
          : u.state === 'connected'
            ? u.peerGone
              ? 'connected to a closed peer'
              : u.peerName
                ? `connected to ${unixName(u.peerName)}`
                : `connected to socket:[${u.peer}]${u.acceptedFrom !== undefined ? ' (accepted)' : ''}`
            : u.name
              ? `bound to ${unixName(u.name)}`
              : 'unconnected';
      return `${u.type} ${where}${queued ? `, ${bytes(queued)} queued in ${u.queue!.length} piece(s)` : ''}${u.shutdown ? `, shutdown ${u.shutdown}` : ''}${options(u.options)}`;
    }
    case 'inet': {
      const s = e.inet!;
      const addr = (a: { addr: string; port: number }) => (s.family === 'ipv6' ? `[${a.addr}]:${a.port}` : `${a.addr}:${a.port}`);
      const where = s.state === 'listening' ? `listening on ${addr(s.local!)}, backlog ${s.backlog}` : s.state === 'unbound' ? 'unbound' : `bound to ${addr(s.local!)}`;
      if (s.tcp) {
        const q = (b64: string) => Buffer.byteLength(b64, 'base64');
        const unacked = q(s.tcp.sendQueue) - s.tcp.unsent;
        return `tcp established ${addr(s.local!)} -> ${addr(s.peer!)}: ${bytes(q(s.tcp.recvQueue))} unread, ${bytes(unacked)} unacknowledged, ${bytes(s.tcp.unsent)} unsent${options(s.options)}`;
      }
      return `${s.proto} ${where}${s.peer ? `, connected to ${addr(s.peer)}` : ''}${options(s.options)}`;
    }
    case 'eventfd':
      return `count ${BigInt(e.eventfd!.count)}${e.eventfd!.semaphore ? ', semaphore' : ''}`;
    case 'epoll':
      return `${e.epoll!.items.length} fd(s): ${e.epoll!.items
        .map((i) => `${i.fd} (${EPOLL_BITS.filter(([b]) => i.events & b).map(([, n]) => n).join('|') || '-'}, data ${i.data})`)
        .join(', ')}`;
    case 'timerfd': {
      const t = e.timerfd!;
      const armed = t.value.sec || t.value.nsec;
      return `${CLOCKS[t.clockid] ?? `clock ${t.clockid}`}, ${armed ? `${secs(t.value)} left` : 'disarmed'}${t.interval.sec || t.interval.nsec ? `, every ${secs(t.interval)}` : ''}${t.flags & 1 ? ', absolute' : ''}${t.ticks ? `, ${t.ticks} tick(s) unread` : ''}`;
    }
    case 'signalfd': {
      const m = BigInt(e.signalfd!.mask);
      const sigs = Array.from({ length: 64 }, (_, i) => i + 1).filter((s) => (m >> BigInt(s - 1)) & 1n);
      return `signals ${sigs.join(' ') || 'none'}`;
    }
    case 'inotify':
      return `${e.inotify!.watches.map((w) => `wd ${w.wd} ${w.path} (mask 0x${w.mask.toString(16)})`).join(', ')}${e.inotify!.queuedBytes ? `; ${bytes(e.inotify!.queuedBytes)} of events dropped` : ''}`;
    case 'memfd': {
      const m = e.memfd!;
      return `"${m.name}", ${bytes(m.size)}${m.seals ? `, seals 0x${m.seals.toString(16)}` : ''}${m.ghost ? '' : ' (the same memfd as another fd)'}`;
    }
    case 'reg':
      return e.deleted ? `deleted, ${bytes(e.deleted.size)} saved` : '';
    default:
      return '';
  }
}

/** One line per armed timer. */
export function timerLines(t: Timers | undefined): string[] {
  if (!t) return [];
  const out: string[] = [];
  for (const [name, it] of Object.entries(t.itimers)) {
    if (it) out.push(`ITIMER_${name.toUpperCase()}: ${secs(it.value)} left${it.interval.sec || it.interval.nsec ? `, every ${secs(it.interval)}` : ''}`);
  }
  for (const p of t.posix) {
    const to = p.notify === 'none' ? 'no signal' : `signal ${p.signal}${p.tid !== undefined ? ` to thread ${p.tid}` : ''}, value ${p.value}`;
    const left = p.remaining.sec || p.remaining.nsec ? `${secs(p.remaining)} left` : 'disarmed';
    out.push(`POSIX timer ${p.id}: ${CLOCKS[p.clockid] ?? `clock ${p.clockid}`}, ${to}, ${left}${p.interval.sec || p.interval.nsec ? `, every ${secs(p.interval)}` : ''}`);
  }
  return out;
}
