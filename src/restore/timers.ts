// Interval timers (setitimer) and POSIX timers (timer_create + timer_settime), by injected
// syscalls, each armed with its remaining time from now and its period. POSIX timers get
// their old ids: with PR_TIMER_CREATE_RESTORE_IDS on (a recent kernel's interface, made for CRIU),
// timer_create takes the id to use from its third argument.
import { CriuError } from '../errors.js';
import type { Timers } from '../images/timers.js';
import { hasCode } from '../kernel/native.js';
import { readRemote } from '../kernel/remote.js';
import { SYS } from '../kernel/syscalls.js';
import { putBytes, u64s } from './remote-args.js';
import type { Stub } from './stub.js';

const PR_TIMER_CREATE_RESTORE_IDS = 77;
const SIGEV_SIGNAL = 0;
const SIGEV_NONE = 1;
const SIGEV_THREAD_ID = 4;
const ITIMER = { real: 0, virtual: 1, prof: 2 } as const;

export function restoreTimers(stub: Stub, t: Timers): void {
  const r = stub.remote;
  for (const [name, which] of Object.entries(ITIMER) as Array<[keyof typeof ITIMER, number]>) {
    const it = t.itimers[name];
    if (!it) continue;
    // struct itimerval: it_interval, it_value (timevals: microseconds); a zero value would disarm it.
    const valueUs = Math.floor(it.value.nsec / 1000) || (it.value.sec ? 0 : 1);
    const v = u64s(it.interval.sec, Math.floor(it.interval.nsec / 1000), it.value.sec, valueUs);
    r.call(SYS.setitimer, `setitimer(${name})`, which, putBytes(stub, v), 0);
  }
  if (!t.posix.length) return;
  try {
    r.call(SYS.prctl, 'prctl(PR_TIMER_CREATE_RESTORE_IDS)', PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
  } catch (e) {
    if (hasCode(e, 'EINVAL')) throw new CriuError('ENOTSUP', `pid ${stub.pid} has POSIX timers, and this kernel cannot create a timer with a given id (PR_TIMER_CREATE_RESTORE_IDS)`, { cause: e });
    throw e;
  }
  try {
    for (const p of t.posix) {
      // struct sigevent: sigev_value (8), sigev_signo (4), sigev_notify (4), _tid (4), padding to 64
      const sev = Buffer.alloc(64);
      sev.writeBigUInt64LE(BigInt(p.value), 0);
      sev.writeInt32LE(p.signal, 8);
      sev.writeInt32LE(p.notify === 'none' ? SIGEV_NONE : SIGEV_SIGNAL | (p.tid !== undefined ? SIGEV_THREAD_ID : 0), 12);
      sev.writeInt32LE(p.tid ?? 0, 16);
      const sevAt = putBytes(stub, sev);
      const idBuf = Buffer.alloc(4);
      idBuf.writeInt32LE(p.id, 0);
      const idAt = putBytes(stub, idBuf, 64);
      r.call(SYS.timer_create, `timer_create(id ${p.id})`, p.clockid, sevAt, idAt);
      const got = readRemote(stub.pid, idAt, 4).readInt32LE(0);
      if (got !== p.id) throw new CriuError('EINVAL', `POSIX timer ${p.id} came back as ${got}`);
      if (p.remaining.sec || p.remaining.nsec) {
        const its = u64s(p.interval.sec, p.interval.nsec, p.remaining.sec, p.remaining.nsec);
        r.call(SYS.timer_settime, `timer_settime(${p.id})`, p.id, 0, putBytes(stub, its, 128), 0);
      }
    }
  } finally {
    r.call(SYS.prctl, 'prctl(PR_TIMER_CREATE_RESTORE_IDS)', PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
  }
}
