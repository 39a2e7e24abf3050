// A parasite: the syscall runner (native/inject.cc) copied into a stopped process, so that a
// group of syscalls runs in one continue of the thread instead of a single step each. On
// this VM a step is a round trip through the scheduler that takes 40 µs when the machine is
// quiet and up to 400 while smaps walks the same process; a dump's collection has some 90.
//
// Layout: one page of code, read-execute and never writable (a process under MDWE, or a
// W^X seccomp policy, refuses write+execute and gaining execute; our write goes through
// /proc/PID/mem, which writes read-only memory), then TABLE_PAGES read-write pages for the
// table of calls and their results. Mapping it takes the mm's lock for writing and changes
// the layout, so a dump maps it before anything reads the layout again (smaps) and unmaps
// it right after.
import { closeSync, openSync, writeSync } from 'node:fs';
import { native } from './native.js';
import { readRemote, writeRemote, type Remote, type RemoteCall } from './remote.js';
import { MAP, PROT, SYS } from './syscalls.js';

const PAGE = 4096;
/** A table entry: nr and six arguments, 8 bytes each. */
const ENTRY = 56;
const TABLE_PAGES = 2;
/** The whole mapping: the code page, then the table pages. */
const LENGTH = (1 + TABLE_PAGES) * PAGE;
/** Calls per run: the count, the entries and a result each fit the table pages. */
export const MAX_CALLS = Math.floor((TABLE_PAGES * PAGE - 8) / (ENTRY + 8));

const u64 = (a: number | bigint) => BigInt.asUintN(64, BigInt(a));

export class Parasite {
  private constructor(
    readonly pid: number,
    /** Start of the mapping: the code. */
    readonly base: number,
    private readonly codeLen: number,
  ) {}

  /** Bytes mapped from base. */
  readonly length = LENGTH;

  /**
   * Maps the runner into pid through remote (a thread of pid, stopped). Where the process or
   * the kernel refuses (seccomp, an LSM, no memory), nothing stays mapped and the answer is
   * why, for the caller to step each syscall instead.
   */
  static map(remote: Remote, pid: number): Parasite | string {
    const code = native.syscallRunner();
    let base: number;
    try {
      base = remote.mmap(0, LENGTH, PROT.READ | PROT.EXEC, MAP.PRIVATE | MAP.ANONYMOUS);
    } catch (e) {
      return (e as Error).message;
    }
    try {
      const fd = openSync(`/proc/${pid}/mem`, 'r+');
      try {
        const n = writeSync(fd, code, 0, code.length, base);
        if (n !== code.length) throw new Error(`/proc/${pid}/mem: short write ${n}/${code.length}`);
      } finally {
        closeSync(fd);
      }
      remote.call(SYS.mprotect, 'mprotect', base + PAGE, TABLE_PAGES * PAGE, PROT.READ | PROT.WRITE);
      return new Parasite(pid, base, code.length);
    } catch (e) {
      remote.munmap(base, LENGTH);
      return (e as Error).message;
    }
  }

  /** Runs the calls in thread tid (stopped), in order, MAX_CALLS a continue; the raw rax of each. */
  run(tid: number, calls: readonly RemoteCall[], park = true): BigInt64Array {
    const out = new BigInt64Array(calls.length);
    for (let first = 0; first < calls.length; first += MAX_CALLS) {
      const part = calls.slice(first, first + MAX_CALLS);
      const table = Buffer.alloc(8 + part.length * ENTRY);
      table.writeBigUInt64LE(BigInt(part.length), 0);
      part.forEach((c, i) => {
        if (c.args.length > 6) throw new Error(`${c.name}: ${c.args.length} arguments, a syscall takes six`);
        [c.nr, ...c.args].forEach((v, j) => table.writeBigUInt64LE(u64(v), 8 + i * ENTRY + j * 8));
      });
      const tableAt = this.base + PAGE;
      const resultsAt = tableAt + table.length;
      writeRemote(this.pid, tableAt, table);
      native.runInjected(tid, this.base, this.base + this.codeLen, tableAt, resultsAt, park);
      const r = readRemote(this.pid, resultsAt, 8 * part.length);
      for (let i = 0; i < part.length; i++) out[first + i] = r.readBigInt64LE(8 * i);
    }
    return out;
  }

  unmap(remote: Remote): void {
    remote.munmap(this.base, this.length);
  }
}
