// What every fd collector gets, and the pieces they share: fdinfo, taking an fd out of the
// target for a moment, and the error that refuses an fd.
import { readFileSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { HeldConnections } from './tcp.js';

export interface FdInfo {
  pos: number;
  flags: number;
  /** The whole fdinfo text: kinds keep their state in it (eventfd-count, tfd lines, ...). */
  text: string;
}

export function readFdinfo(pid: number, fd: number): FdInfo {
  const text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
  return { pos: Number(fdinfoField(text, 'pos') ?? 0), flags: parseInt(fdinfoField(text, 'flags') ?? '0', 8), text };
}

/** The value of a "key: value" line of fdinfo (keys may hold spaces: "settime flags"). */
export function fdinfoField(text: string, key: string): string | undefined {
  return new RegExp(`^${key}:[ \\t]*(.*?)[ \\t]*$`, 'm').exec(text)?.[1];
}

/** A field that must be there: its absence means a kernel we do not understand. */
export function requireField(text: string, key: string, what: string): string {
  const v = fdinfoField(text, key);
  if (v === undefined) throw new CriuError('ENOTSUP', `${what}: fdinfo has no "${key}" (kernel too old or too new?)`);
  return v;
}

export interface FdCollectContext {
  pid: number;
  /** Where ghost files go. */
  dir: string;
  log: Logger;
  /** Remarks for the dump's result (lost events, dropped datagrams, ...). */
  notes: string[];
  /** --tcp-established: where established connections are read and held. */
  tcp?: HeldConnections;
  /** Every fd of the process and what it is, by number. */
  targets: ReadonlyMap<number, string>;
  /** Runs fn with the target's fd taken into this process (pidfd_getfd), closed afterwards. */
  withFd<T>(fd: number, fn: (ours: number) => T): T;
}

/** The fds of the process, taken into ours one at a time (see src/kernel/taken-fds.ts). */
export { TakenFds as TargetFds } from '../../kernel/taken-fds.js';

export function unsupported(pid: number, fd: number, what: string): CriuError {
  return new CriuError('ENOTSUP', `fd ${fd} of pid ${pid} is ${what}: not supported yet${fd <= 2 ? ' (use --shell-job for std fds)' : ''}`);
}

/** A refusal that is not "not supported yet" but a property of this fd (a connection, ...). */
export function refused(pid: number, fd: number, what: string, why: string): CriuError {
  return new CriuError('ENOTSUP', `fd ${fd} of pid ${pid} is ${what}: ${why}`);
}

/** 64-bit hex as the images keep it. */
export const hex64 = (v: bigint | string) => '0x' + (typeof v === 'string' ? BigInt('0x' + v) : v).toString(16);

export function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}
