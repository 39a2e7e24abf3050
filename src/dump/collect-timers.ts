// The process's timers (timers-PID.json): the three interval timers by injected getitimer,
// the POSIX timers from /proc/PID/timers (id, clock, signal, target) plus an injected
// timer_gettime each for the time left and the period.
import { readFileSync } from 'node:fs';
import { CriuError } from '../errors.js';
import type { PosixTimer, Timers } from '../images/timers.js';
import { readRemote, type Remote, type RemoteCall } from '../kernel/remote.js';
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

/** The two timevals (or timespecs) of a struct itimerval (itimerspec) at `at`: interval, value. */
function pair(b: Buffer, at: number, nsecPerUnit: number) {
  const t = (o: number) => ts(b.readBigInt64LE(at + o), b.readBigInt64LE(at + o + 8) * BigInt(nsecPerUnit));
  return { interval: t(0), value: t(16) };
}

const RESULT = 32; // sizeof struct itimerval and of struct itimerspec
const PER_STOP = 4096 / RESULT; // results that fit the scratch page

/** Timers of a frozen process; `scratch` is a page of ours in it for the syscalls' results. */
export function collectTimers(pid: number, remote: Remote, scratch: number): Timers {
  const posix = parseProcTimers(readFileSync(`/proc/${pid}/timers`, 'utf8'));
  for (const t of posix) {
    // A timer aimed at another thread needs that thread back first (threads are restored later).
    if (t.tid !== undefined && t.tid !== pid) throw new CriuError('ENOTSUP', `POSIX timer ${t.id} of pid ${pid} signals thread ${t.tid}: timers aimed at other threads are not supported yet`);
  }
  // All in one stop (see Remote.callAll), which also reads them at about the same moment.
  const calls: RemoteCall[] = [
    ...ITIMERS.map(([name, which]) => ({ nr: SYS.getitimer, name: `getitimer(${name})`, args: [which] })),
    ...posix.map((t) => ({ nr: SYS.timer_gettime, name: `timer_gettime(${t.id})`, args: [t.id] })),
  ];
  const results = Buffer.alloc(calls.length * RESULT);
  for (let i = 0; i < calls.length; i += PER_STOP) {
    const part = calls.slice(i, i + PER_STOP);
    remote.callAll(part.map((c, j) => ({ ...c, args: [...c.args, scratch + RESULT * j] })));
    readRemote(pid, scratch, RESULT * part.length).copy(results, RESULT * i);
  }
  const itimers: Timers['itimers'] = {};
  ITIMERS.forEach(([name], i) => {
    const { interval, value } = pair(results, RESULT * i, US);
    if (value.sec || value.nsec) itimers[name] = { value, interval };
  });
  const timers: PosixTimer[] = posix.map((t, i) => {
    const { interval, value } = pair(results, RESULT * (ITIMERS.length + i), 1);
    return { ...t, remaining: value, interval };
  });
  return { pid, itimers, posix: timers.sort((a, b) => a.id - b.id) };
}
