// Anonymous-inode kernel objects whose whole state is in fdinfo: eventfd (counter, semaphore
// mode), signalfd (mask), timerfd (clock, time left, period, unread expirations) and epoll
// (every registered fd with its events and data, checked with kcmp to be the file at that
// number).
import { CriuError } from '../../errors.js';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { bootId, hex64, readFdinfo, refused, requireField, type FdCollectContext } from './common.js';

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

const NS = 1_000_000_000n;
const TFD_TIMER_ABSTIME = 1;

export function collectTimerfd(ctx: FdCollectContext, fd: number): State<'timerfd'> {
  const what = `timerfd at fd ${fd} of pid ${ctx.pid}`;
  // fdinfo shows an expired periodic timer as 0 left until something reads it; gettime
  // brings it up to date first (next expiry, missed ticks added), as the process's next read
  // would. Then fdinfo has the ticks that go with it.
  const t = ctx.withFd(fd, (ours) => native.timerfdGettime(ours));
  const text = readFdinfo(ctx.pid, fd).text;
  const clockid = Number(requireField(text, 'clockid', what));
  const flags = parseInt(requireField(text, 'settime flags', what), 8);
  const ts = (ns: bigint) => ({ sec: Number(ns / NS), nsec: Number(ns % NS) });
  const state: State<'timerfd'> = { clockid, flags, ticks: Number(requireField(text, 'ticks', what)), value: ts(t.value), interval: ts(t.interval) };
  if (flags & TFD_TIMER_ABSTIME && t.value) {
    // An absolute timer keeps its deadline in its own clock (restored as is on the same
    // boot, see src/restore/fds/anon.ts).
    state.deadline = ts(native.clockGettime(clockid) + t.value);
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
