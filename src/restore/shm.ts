// Shared anonymous memory between processes of the tree: one object, mapped by each. The
// first process (the one whose image holds its pages) makes it as a memfd; we keep a copy
// of that fd, and every other process takes it from us (pidfd_getfd, injected) to map it.
import { closeSync } from 'node:fs';
import { addr, type Mm, type Vma } from '../images/mm.js';
import { native } from '../kernel/native.js';
import { MAP, SYS } from '../kernel/syscalls.js';
import { putString } from './remote-args.js';
import type { Stub } from './stub.js';

const MFD_CLOEXEC = 1;

export class ShmRegistry {
  private users = new Map<string, number>();
  private ours = new Map<string, number>();

  constructor(mms: Mm[]) {
    for (const mm of mms) {
      for (const id of new Set(mm.vmas.flatMap((v) => (v.shm ? [v.shm.id] : [])))) this.users.set(id, (this.users.get(id) ?? 0) + 1);
    }
  }

  /** Shared with another process of the tree? (Else a plain MAP_SHARED|MAP_ANONYMOUS will do.) */
  isShared(v: Vma): boolean {
    return !!v.shm && (this.users.get(v.shm.id) ?? 0) > 1;
  }

  /** Maps v in the stub: a new memfd in the owner, the owner's object in the others. */
  map(stub: Stub, v: Vma): void {
    const r = stub.remote;
    const start = addr(v.start);
    const len = addr(v.end) - start;
    const shm = v.shm!;
    let fd: number;
    if (shm.owner === stub.pid && !this.ours.has(shm.id)) {
      fd = r.call(SYS.memfd_create, 'memfd_create', putString(stub, 'criu-ts-shm'), MFD_CLOEXEC);
      r.call(SYS.ftruncate, 'ftruncate', fd, shm.sizeBytes);
      const pidfd = native.pidfdOpen(stub.pid);
      try {
        this.ours.set(shm.id, native.pidfdGetfd(pidfd, fd));
      } finally {
        closeSync(pidfd);
      }
    } else {
      const ours = this.ours.get(shm.id);
      if (ours === undefined) throw new Error(`shared memory ${shm.id}: its owner ${shm.owner} is not restored before ${stub.pid}`);
      const pidfd = r.call(SYS.pidfd_open, 'pidfd_open', process.pid, 0);
      try {
        fd = r.call(SYS.pidfd_getfd, 'pidfd_getfd', pidfd, ours, 0);
      } finally {
        r.call(SYS.close, 'close', pidfd);
      }
    }
    try {
      r.mmap(start, len, v.prot, MAP.SHARED | MAP.FIXED, fd, v.offset ?? 0);
    } finally {
      r.call(SYS.close, 'close', fd);
    }
  }

  close(): void {
    for (const fd of this.ours.values()) closeSync(fd);
    this.ours.clear();
  }
}
