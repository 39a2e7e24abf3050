// Anonymous-inode kernel objects whose whole state is in fdinfo: eventfd (counter, semaphore
// mode), signalfd (mask), timerfd (clock, time left, period, unread expirations) and epoll
// (every registered fd with its events and data, checked with kcmp to be the file at that
// number).
import { CriuError } from '../../errors.js';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { bootId, hex64, refused, requireField, type FdCollectContext } from './common.js';

type State<K extends keyof FdEntry> = NonNullable<FdEntry[K]>;

export function collectEventfd(ctx: FdCollectContext, fd: number, text: string): State<'eventfd'> {
  const what = `eventfd at fd ${fd} of pid ${ctx.pid}`;
  return {
    count: hex64(requireField(text, 'eventfd-count', what)),
    semaphore: requireField(text, 'eventfd-semaphore', what) === '1',
  };
}

export function collectSignalfd(ctx: FdCollectContext, fd: number, text: string): State<'signalfd'> {
  return { mask: hex64(requireField(text, 'sigmask', `signalfd at fd ${fd} of pid ${ctx.pid}`)) };
}

const TIMESPEC = /^\((\d+), (\d+)\)$/;

function timespecField(text: string, key: string, what: string): { sec: number; nsec: number } {
  const m = TIMESPEC.exec(requireField(text, key, what));
  if (!m) throw new CriuError('ENOTSUP', `${what}: cannot read ${key} in fdinfo`);
  return { sec: Number(m[1]), nsec: Number(m[2]) };
}

const NS = 1_000_000_000n;
const TFD_TIMER_ABSTIME = 1;

export function collectTimerfd(ctx: FdCollectContext, fd: number, text: string): State<'timerfd'> {
  const what = `timerfd at fd ${fd} of pid ${ctx.pid}`;
  const clockid = Number(requireField(text, 'clockid', what));
  const flags = parseInt(requireField(text, 'settime flags', what), 8);
  const value = timespecField(text, 'it_value', what);
  const interval = timespecField(text, 'it_interval', what);
  const state: State<'timerfd'> = { clockid, flags, ticks: Number(requireField(text, 'ticks', what)), value, interval };
  if (flags & TFD_TIMER_ABSTIME && (value.sec || value.nsec)) {
    // fdinfo shows the time left; an absolute timer keeps its deadline in its own clock
    // (restored as is on the same boot, see src/restore/fds/anon.ts).
    const at = native.clockGettime(clockid) + BigInt(value.sec) * NS + BigInt(value.nsec);
    state.deadline = { sec: Number(at / NS), nsec: Number(at % NS) };
    state.bootId = bootId();
  }
  return state;
}

const TFD_LINE = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)/gm;

export function collectEpoll(ctx: FdCollectContext, fd: number, text: string): State<'epoll'> {
  const items: State<'epoll'>['items'] = [];
  for (const m of text.matchAll(TFD_LINE)) {
    const tfd = Number(m[1]);
    const item = { fd: tfd, events: parseInt(m[2]!, 16), data: hex64(m[3]!) };
    // Restore registers (file at tfd, tfd): it must still be that file, and only once.
    const why = !ctx.targets.has(tfd)
      ? `it watches fd ${tfd}, which is closed (the file lives on elsewhere)`
      : items.some((i) => i.fd === tfd)
        ? `it watches two files under fd ${tfd}`
        : native.kcmpEpollTfd(ctx.pid, ctx.pid, tfd, fd, tfd, 0) !== 0
          ? `it watches a file under fd ${tfd} that is no longer the one at fd ${tfd}`
          : undefined;
    if (why) throw refused(ctx.pid, fd, 'an epoll instance', `${why}: such an epoll cannot be rebuilt`);
    items.push(item);
  }
  if (items.length !== (text.match(/^tfd:/gm) ?? []).length) throw new CriuError('ENOTSUP', `epoll at fd ${fd} of pid ${ctx.pid}: cannot read its fdinfo`);
  return { items };
}
