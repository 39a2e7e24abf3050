// eventfd, signalfd, timerfd and epoll, created by injected syscalls with their saved state.
//
// Timers: a relative timerfd gets its remaining time from now (time in the image does not
// count, as with CRIU). An absolute one keeps its deadline in its clock when that deadline
// still means the same instant: always for the realtime clocks, and for the monotonic and
// boot-time clocks only on the boot it was dumped in (same host, no reboot: a deadline that
// passed meanwhile fires at once); otherwise it gets its remaining time from now.
import { readFileSync } from 'node:fs';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { SYS } from '../../kernel/syscalls.js';
import { putBytes, u64s } from '../remote-args.js';
import type { FdRestoreContext } from './context.js';

const EFD_SEMAPHORE = 1;
const TFD_TIMER_ABSTIME = 1;
/** _IOW('T', 0, u64): set the count of unread expirations (CONFIG_CHECKPOINT_RESTORE). */
const TFD_IOC_SET_TICKS = 0x40085400;
const EPOLL_CTL_ADD = 1;
const CLOCK_REALTIME = 0;
const CLOCK_REALTIME_ALARM = 8;
const NS = 1_000_000_000n;

export function createEventfd(ctx: FdRestoreContext, e: FdEntry): number {
  const { stub } = ctx;
  const s = e.eventfd!;
  const fd = stub.remote.call(SYS.eventfd2, 'eventfd2', 0, s.semaphore ? EFD_SEMAPHORE : 0);
  // eventfd2 takes a 32-bit initial value; write(2) adds the full 64-bit count.
  const count = BigInt(s.count);
  if (count) stub.remote.call(SYS.write, 'write(eventfd)', fd, putBytes(stub, u64s(count)), 8);
  return fd;
}

export function createSignalfd(ctx: FdRestoreContext, e: FdEntry): number {
  const { stub } = ctx;
  return stub.remote.call(SYS.signalfd4, 'signalfd4', -1, putBytes(stub, u64s(BigInt(e.signalfd!.mask))), 8, 0);
}

function currentBootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/** The it_value to arm the timer with, per the rules above. */
export function timerfdValue(s: NonNullable<FdEntry['timerfd']>, now: (clockid: number) => bigint, bootId: string): bigint {
  const left = BigInt(s.value.sec) * NS + BigInt(s.value.nsec);
  if (!(s.flags & TFD_TIMER_ABSTIME)) return left;
  const wall = s.clockid === CLOCK_REALTIME || s.clockid === CLOCK_REALTIME_ALARM;
  if (s.deadline && (wall || s.bootId === bootId)) return BigInt(s.deadline.sec) * NS + BigInt(s.deadline.nsec);
  return now(s.clockid) + left;
}

export function createTimerfd(ctx: FdRestoreContext, e: FdEntry): number {
  const { stub } = ctx;
  const s = e.timerfd!;
  const fd = stub.remote.call(SYS.timerfd_create, 'timerfd_create', s.clockid, 0);
  if (s.value.sec || s.value.nsec) {
    const v = timerfdValue(s, (c) => native.clockGettime(c), currentBootId());
    // struct itimerspec: it_interval, it_value
    const its = u64s(s.interval.sec, s.interval.nsec, v / NS, v % NS);
    stub.remote.call(SYS.timerfd_settime, 'timerfd_settime', fd, s.flags, putBytes(stub, its), 0);
  }
  if (s.ticks) stub.remote.call(SYS.ioctl, 'ioctl(TFD_IOC_SET_TICKS)', fd, TFD_IOC_SET_TICKS, putBytes(stub, u64s(s.ticks)));
  return fd;
}

export function createEpoll(ctx: FdRestoreContext): number {
  return ctx.stub.remote.call(SYS.epoll_create1, 'epoll_create1', 0);
}

/**
 * Registers each epoll's items, by the fds' final numbers (epoll keys an item by file and
 * number): so this runs once every fd is in place.
 */
export function registerEpolls(ctx: FdRestoreContext, fds: FdEntry[]): void {
  const { stub } = ctx;
  for (const e of fds) {
    if (e.kind !== 'epoll' || e.dupOf !== undefined || e.sharedWith) continue; // a shared epoll has its items already
    for (const item of e.epoll!.items) {
      // struct epoll_event is packed on x86_64: u32 events, u64 data.
      const ev = Buffer.alloc(12);
      ev.writeUInt32LE(item.events, 0);
      ev.writeBigUInt64LE(BigInt(item.data), 4);
      stub.remote.call(SYS.epoll_ctl, `epoll_ctl(${e.fd}, ADD, ${item.fd})`, e.fd, EPOLL_CTL_ADD, item.fd, putBytes(stub, ev));
    }
  }
}
