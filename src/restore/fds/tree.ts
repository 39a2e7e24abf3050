// Open file descriptions shared by processes of a tree (see src/dump/fds/shared.ts): the
// first process makes each object; the others take it, by syscalls injected into them
// (pidfd_open + pidfd_getfd) from that process, or, for a pipe end the first process does
// not keep, from us, who kept a copy meanwhile.
import { closeSync } from 'node:fs';
import type { FdEntry, Files } from '../../images/files.js';
import { SYS } from '../../kernel/syscalls.js';
import type { Stub } from '../stub.js';

/** Takes fd `fd` of process `from` into the stub; returns the stub's new fd. */
function takeInto(stub: Stub, from: number, fd: number): number {
  const r = stub.remote;
  const pidfd = r.call(SYS.pidfd_open, `pidfd_open(${from})`, from, 0);
  try {
    return r.call(SYS.pidfd_getfd, `pidfd_getfd(${from}, ${fd})`, pidfd, fd, 0);
  } finally {
    r.call(SYS.close, 'close', pidfd);
  }
}

export class TreeFds {
  /** Pipe ends made by their creator but kept by none of its fds: ours, until taken. */
  private stash = new Map<string, number>();

  constructor(private readonly files: Map<number, Files>) {}

  /** An object made by an earlier process of the tree, taken into this stub. */
  takeShared(stub: Stub, e: FdEntry): number {
    return takeInto(stub, e.sharedWith!.pid, e.sharedWith!.fd);
  }

  /** The data saved for a pipe, whichever process of the tree held the end it was read from. */
  pipeData(id: number): { size: number; data?: string } {
    for (const f of this.files.values()) {
      for (const e of f.fds) if (e.kind === 'pipe' && e.pipe?.id === id && (e.pipe.data !== undefined || e.pipe.size > 0)) return { size: e.pipe.size, ...(e.pipe.data !== undefined ? { data: e.pipe.data } : {}) };
    }
    return { size: 0 };
  }

  /** The creator keeps a pipe end it does not hold itself for a later process (`ours` is ours). */
  keep(id: number, end: 'r' | 'w', ours: number): void {
    this.stash.set(`${id}:${end}`, ours);
  }

  /** A later process's pipe end, from what the creator left with us. */
  takeKept(stub: Stub, id: number, end: 'r' | 'w'): number {
    const ours = this.stash.get(`${id}:${end}`);
    if (ours === undefined) throw new Error(`pipe ${id}: its ${end === 'r' ? 'read' : 'write'} end was not made by an earlier process of the tree`);
    return takeInto(stub, process.pid, ours);
  }

  close(): void {
    for (const fd of this.stash.values()) closeSync(fd);
    this.stash.clear();
  }
}
