// timers-PID.json: the process's interval timers (setitimer) and POSIX timers (timer_create),
// each with the time left and its period when dumped. A timer's remaining time counts from
// the restore, as if the process had been frozen in between (CRIU does the same): time spent
// in the image does not make every timer fire at once.
import { readJson, writeJson, type DeferredSyncs } from './io.js';
import type { SetLocation } from './source.js';
import { arr, hex, literal, obj, opt, uint, type Infer } from './schema.js';
import { timespec } from './fd-kinds.js';

export const timersFile = (pid: number) => `timers-${pid}.json`;

const itimer = obj({ value: timespec, interval: timespec });

export const posixTimerSchema = obj({
  /** The timer's id, which the process holds: restored as the same id (PR_TIMER_CREATE_RESTORE_IDS). */
  id: uint,
  clockid: uint,
  /** SIGEV_SIGNAL (optionally to one thread: tid), or SIGEV_NONE. */
  notify: literal('signal', 'none'),
  tid: opt(uint),
  signal: uint,
  /** sigev_value, as the signal's si_value carries it. */
  value: hex,
  /** Time left and period (zero: disarmed). */
  remaining: timespec,
  interval: timespec,
});

export const timersSchema = obj({
  pid: uint,
  /** ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: only those armed. */
  itimers: obj({ real: opt(itimer), virtual: opt(itimer), prof: opt(itimer) }),
  posix: arr(posixTimerSchema),
});

export type Timers = Infer<typeof timersSchema>;
export type PosixTimer = Infer<typeof posixTimerSchema>;

export const writeTimers = (dir: string, t: Timers, syncs?: DeferredSyncs) => writeJson(dir, timersFile(t.pid), t, syncs);
export const readTimers = (from: SetLocation, pid: number): Timers => readJson(from, timersFile(pid), timersSchema);
