// What every fd kind's restore gets: the stub, the images, where objects are parked, and a
// way to reach an object from this process.
//
// Numbers: each object is created inside the stub wherever the kernel puts it and moved above
// every number the table uses (park); once all exist, each fd is dup'ed to its number and the
// temporaries closed. So no open can land on a number that a later fd needs.
//
// Objects are created by injected syscalls, inside the restored process (so sockets carry its
// credentials, and epoll items its fd numbers); their configuration and data (socket options,
// bind, queued bytes, memfd content) go through a copy taken with pidfd_getfd, which is the
// same object.
import type { ImageSource } from '../../images/source.js';
import { readRemote } from '../../kernel/remote.js';
import { SYS } from '../../kernel/syscalls.js';
import type { Logger } from '../../log.js';
import { putBytes } from '../remote-args.js';
import type { Stub } from '../stub.js';
import type { TreeFds } from './tree.js';

const F_DUPFD = 0;

export class FdPlacer {
  /** Temporary fd (above every final number) of each saved fd that owns an object. */
  readonly temp = new Map<number, number>();
  constructor(
    private readonly stub: Stub,
    private readonly base: number,
  ) {}

  /** Moves a freshly made fd above the table's numbers. */
  park(fd: number): number {
    const high = this.stub.remote.call(SYS.fcntl, 'fcntl(F_DUPFD)', fd, F_DUPFD, this.base);
    this.stub.remote.call(SYS.close, 'close', fd);
    return high;
  }
}

export interface FdRestoreContext {
  stub: Stub;
  src: ImageSource;
  place: FdPlacer;
  log: Logger;
  /** Runs fn with the stub's fd copied into this process (same object), closed afterwards. */
  withOurs<T>(stubFd: number, fn: (ours: number) => T): T;
  /** Process trees: objects shared with, or made by, the processes restored before this one. */
  tree?: TreeFds;
}

/** The fds of the process, taken into ours one at a time (see src/kernel/taken-fds.ts). */
export { TakenFds as StubFds } from '../../kernel/taken-fds.js';

/** Writes all of data to the stub's fd by injected write(2)s, a scratch area at a time. */
export function writeInStub(stub: Stub, fd: number, data: Buffer, what: string): void {
  for (let off = 0; off < data.length; ) {
    const chunk = data.subarray(off, off + Math.min(data.length - off, stub.scratchLen));
    off += stub.remote.call(SYS.write, `write(${what})`, fd, putBytes(stub, chunk), chunk.length);
  }
}

/** A syscall that fills two ints (pipe2, socketpair): returns them. */
export function twoFds(stub: Stub, call: (at: number) => void): [number, number] {
  const at = putBytes(stub, Buffer.alloc(8));
  call(at);
  const made = readRemote(stub.pid, at, 8);
  return [made.readInt32LE(0), made.readInt32LE(4)];
}
