// Running syscalls inside a stopped thread (see native/inject.cc for the mechanism), with
// the policy around it: where the `syscall` instruction is, -errno as Errors, and a
// scratch page for syscalls that take pointers.
import { native } from './native.js';
import { remoteErrno } from './errors.js';
import { readMaps, type MapEntry } from './procfs.js';
import { MAP, PROT, SYS } from './syscalls.js';
import type { Parasite } from './parasite.js';

const SYSCALL_INSN = Buffer.from([0x0f, 0x05]);

/** Finds the bytes `0f 05` in an executable mapping, preferring the vDSO (never written). */
export function findSyscallInsn(pid: number, maps: MapEntry[] = readMaps(pid)): number {
  const exec = maps.filter((m) => m.perms[2] === 'x' && m.perms[0] === 'r');
  const ordered = [...exec.filter((m) => m.name === '[vdso]'), ...exec.filter((m) => m.name !== '[vdso]')];
  for (const m of ordered) {
    const len = Math.min(m.end - m.start, 1 << 20);
    const buf = Buffer.alloc(len);
    let n: number;
    try {
      n = native.processVmReadv(pid, buf, 0, [m.start, len]);
    } catch {
      continue;
    }
    const at = buf.subarray(0, n).indexOf(SYSCALL_INSN);
    if (at >= 0) return m.start + at;
  }
  throw new Error(`pid ${pid}: no readable syscall instruction in any executable mapping`);
}

export type Arg = number | bigint;

/** One syscall of a Remote.callAll batch; name is for errors. */
export interface RemoteCall {
  nr: number;
  name: string;
  args: Arg[];
}

export class Remote {
  /**
   * park: after each call, put the thread back in an event stop, so that our death leaves a
   * live target unharmed (see native/inject.cc). A restore stub (PTRACE_O_EXITKILL: it dies
   * with us) does without, which halves the cost of a call.
   */
  /** Set while a parasite is mapped in the process: callAll runs through it (see parasite.ts). */
  parasite: Parasite | undefined;

  constructor(
    readonly tid: number,
    public syscallIp: number,
    readonly park = true,
  ) {}

  /** The same for another thread of the process (its syscall address, parasite). */
  onThread(tid: number): Remote {
    const r = new Remote(tid, this.syscallIp, this.park);
    r.parasite = this.parasite;
    return r;
  }

  static forThread(tid: number, pid: number = tid): Remote {
    return new Remote(tid, findSyscallInsn(pid));
  }

  /** The raw result: negative errno on failure. */
  raw(nr: number, ...args: Arg[]): bigint {
    return native.injectSyscall(this.tid, this.syscallIp, nr, args, this.park);
  }

  /** The result as a number; a failure throws with the errno's code. */
  call(nr: number, name: string, ...args: Arg[]): number {
    const r = this.raw(nr, ...args);
    if (r < 0n && r >= -4095n) throw remoteErrno(Number(-r), `remote ${name}(${this.tid})`);
    return Number(r);
  }

  /**
   * Several calls in one stop (one save of the registers, one park: about half the round
   * trips of calling them one by one; with a parasite, one continue for them all), in
   * order; all run, then the first failure throws with its name. For getters, whose order
   * does not matter once one fails.
   */
  callAll(calls: readonly RemoteCall[]): number[] {
    const raw = this.parasite ? this.parasite.run(this.tid, calls, this.park) : native.injectSyscalls(this.tid, this.syscallIp, calls.map((c) => [c.nr, ...c.args]), this.park);
    return calls.map((c, i) => {
      const r = raw[i]!;
      if (r < 0n && r >= -4095n) throw remoteErrno(Number(-r), `remote ${c.name}(${this.tid})`);
      return Number(r);
    });
  }

  mmap(addr: number, len: number, prot: number, flags: number, fd = -1, off = 0): number {
    return this.call(SYS.mmap, 'mmap', addr, len, prot, flags, fd, off);
  }

  munmap(addr: number, len: number): void {
    this.call(SYS.munmap, 'munmap', addr, len);
  }

  /**
   * Lends fn the target's own memory at [addr, addr + len) as scratch (see stackScratchAt):
   * its bytes are read first and put back after, even on failure.
   */
  withBorrowedScratch<T>(pid: number, addr: number, len: number, fn: (addr: number) => T): T {
    const saved = readRemote(pid, addr, len);
    try {
      return fn(addr);
    } finally {
      writeRemote(pid, addr, saved);
    }
  }

  /** Maps a private anonymous scratch area, runs fn, unmaps it even on failure. */
  withScratch<T>(len: number, fn: (addr: number) => T): T {
    const addr = this.mmap(0, len, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
    try {
      return fn(addr);
    } finally {
      this.munmap(addr, len);
    }
  }
}

/** The x86-64 red zone (a leaf function's below its stack pointer), and a page's margin. */
const BELOW_SP = 128 + 4096;

/**
 * A scratch area of len bytes in the process's [stack] mapping, below a stopped thread's stack
 * pointer sp and clear of the red zone: memory that the ABI leaves unused (the next call or
 * signal frame overwrites it), so lending it changes no mapping: no mmap/munmap, which take
 * the mm's lock (an smaps walk under way would hold them up) and change what smaps shows.
 * Only the kernel's [stack] mapping: a thread on a stack of its own making (coroutines) may
 * have other data below its pointer. Undefined where there is no such room.
 */
export function stackScratchAt(maps: readonly MapEntry[], sp: number, len: number): number | undefined {
  const m = maps.find((x) => x.start <= sp && sp < x.end);
  if (!m || m.name !== '[stack]' || !/^rw.p$/.test(m.perms)) return undefined;
  const addr = Math.floor((sp - BELOW_SP - len) / 4096) * 4096;
  return addr >= m.start ? addr : undefined;
}

/** Copy bytes into / out of the target (process_vm_writev / readv), all or throw. */
export function writeRemote(pid: number, addr: number, data: Buffer): void {
  const n = native.processVmWritev(pid, data, 0, [addr, data.length]);
  if (n !== data.length) throw new Error(`process_vm_writev(${pid}, 0x${addr.toString(16)}): short write ${n}/${data.length}`);
}

export function readRemote(pid: number, addr: number, len: number): Buffer {
  const buf = Buffer.alloc(len);
  const n = native.processVmReadv(pid, buf, 0, [addr, len]);
  if (n !== len) throw new Error(`process_vm_readv(${pid}, 0x${addr.toString(16)}): short read ${n}/${len}`);
  return buf;
}
