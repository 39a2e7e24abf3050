// The process's timers (timers-PID.json): the three interval timers by injected getitimer,
// the POSIX timers from /proc/PID/timers (id, clock, signal, target) plus an injected
// timer_gettime each for the time left and the period.
import { readFileSync } from 'node:fs';
import { CriuError } from '../errors.js';
import type { PosixTimer, Timers } from '../images/timers.js';
import { readRemote, type Remote } from '../kernel/remote.js';
import { SYS } from '../kernel/syscalls.js';

const ITIMERS = [
  ['real', 0],
  ['virtual', 1],
  ['prof', 2],
] as const;
const US = 1000;

/** One /proc/PID/timers entry ("ID:", "signal: N/VALUE", "notify: signal/pid.N", "ClockID:"). */
export function parseProcTimers(text: string): Array<Omit<PosixTimer, 'remaining' | 'interval'>> {
  const out: Array<Omit<PosixTimer, 'remaining' | 'interval'>> = [];
  for (const block of text.split(/^(?=ID:)/m)) {
    if (!block.trim()) continue;
    const get = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(block)?.[1]?.trim();
    const id = get('ID');
    const sig = /^(\d+)\/([0-9a-f]+)$/.exec(get('signal') ?? '');
    const notify = /^(\w+)\/(pid|tid)\.(\d+)$/.exec(get('notify') ?? '');
    const clock = get('ClockID');
    if (id === undefined || !sig || !notify || clock === undefined) throw new CriuError('ENOTSUP', `cannot read /proc/PID/timers entry: ${JSON.stringify(block)}`);
    if (notify[1] !== 'signal' && notify[1] !== 'none') throw new CriuError('ENOTSUP', `POSIX timer ${id} notifies by "${notify[1]}": not supported yet`);
    out.push({
      id: Number(id),
      clockid: Number(clock),
      notify: notify[1],
      ...(notify[2] === 'tid' ? { tid: Number(notify[3]) } : {}),
      signal: Number(sig[1]),
      value: '0x' + BigInt('0x' + sig[2]).toString(16),
    });
  }
  return out;
}

const ts = (sec: bigint, nsec: bigint) => ({ sec: Number(sec), nsec: Number(nsec) });

/** Timers of a frozen process; `scratch` is a page of ours in it for the syscalls' results. */
export function collectTimers(pid: number, remote: Remote, scratch: number): Timers {
  const posix = parseProcTimers(readFileSync(`/proc/${pid}/timers`, 'utf8'));
  for (const t of posix) {
    // A timer aimed at another thread needs that thread back first (threads are restored later).
    if (t.tid !== undefined && t.tid !== pid) throw new CriuError('ENOTSUP', `POSIX timer ${t.id} of pid ${pid} signals thread ${t.tid}: timers aimed at other threads are not supported yet`);
  }
  {
    const itimers: Timers['itimers'] = {};
    for (const [name, which] of ITIMERS) {
      remote.call(SYS.getitimer, `getitimer(${name})`, which, scratch);
      const b = readRemote(pid, scratch, 32); // struct itimerval: interval, value (timevals)
      const interval = ts(b.readBigInt64LE(0), b.readBigInt64LE(8) * BigInt(US));
      const value = ts(b.readBigInt64LE(16), b.readBigInt64LE(24) * BigInt(US));
      if (value.sec || value.nsec) itimers[name] = { value, interval };
    }
    const timers: PosixTimer[] = posix.map((t) => {
      remote.call(SYS.timer_gettime, `timer_gettime(${t.id})`, t.id, scratch);
      const b = readRemote(pid, scratch, 32); // struct itimerspec: interval, value
      return { ...t, remaining: ts(b.readBigInt64LE(16), b.readBigInt64LE(24)), interval: ts(b.readBigInt64LE(0), b.readBigInt64LE(8)) };
    });
    return { pid, itimers, posix: timers.sort((a, b) => a.id - b.id) };
  }
}
