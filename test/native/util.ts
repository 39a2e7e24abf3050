// Helpers shared by the native tests: stub children, the memtool fixture, cleanup.
import { readFileSync } from 'node:fs';
import { native, stubPath } from '../../src/kernel/native.js';
import { regsToJson } from '../../src/kernel/regs.js';
import { PTRACE_O, SIG, WNOHANG } from '../../src/kernel/syscalls.js';
import { decodeStatus, type WaitState } from '../../src/kernel/wait.js';
import { fixture } from '../helpers/fixtures.js';
import { startTarget, type Target } from '../helpers/target.js';

export const PAGE = 4096;

export function getRegs(pid: number): Record<string, string> {
  return regsToJson(native.ptraceGetRegs(pid));
}

export function errCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits for `pid` (our child or tracee) and decodes the status. A plain blocking waitpid
 * would hang the whole worker (and vitest's own timeouts) if an expected stop never came:
 * poll with WNOHANG instead and fail after `limitMs`. This bounds a hang; it asserts no timing.
 */
export function wait(pid: number, options = 0, limitMs = 10_000): WaitState & { pid: number } {
  if (options & WNOHANG) {
    const r = native.waitpid(pid, options);
    return { pid: r.pid, ...decodeStatus(r.status) };
  }
  const deadline = Date.now() + limitMs;
  for (;;) {
    const r = native.waitpid(pid, options | WNOHANG);
    if (r.pid !== 0) return { pid: r.pid, ...decodeStatus(r.status) };
    if (Date.now() > deadline) throw new Error(`pid ${pid}: no state change to wait for (${limitMs} ms)`);
    Atomics.wait(sleeper, 0, 0, 1);
  }
}

/** Resolves once `pid` is blocked in syscall `nr` (from /proc/PID/syscall); bounded. */
export async function inSyscall(pid: number, nr: number, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const first = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0];
    if (first === String(nr)) return;
    if (Date.now() > deadline) throw new Error(`pid ${pid}: not in syscall ${nr} (${first})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** SIGKILL and reap a child or tracee of ours; quiet if it is already gone. */
export function killAndReap(pid: number): void {
  try {
    native.kill(pid, SIG.KILL);
  } catch {
    /* gone */
  }
  for (;;) {
    let s: WaitState;
    try {
      s = decodeStatus(native.waitpid(pid, 0).status);
    } catch {
      return; // ECHILD: reaped, or not ours (a target under its shell, not traced)
    }
    if (s.kind === 'exited' || s.kind === 'signaled') return;
  }
}

/** Everything a test started, to be killed and reaped in afterEach. */
export class Procs {
  private stubs: number[] = [];
  private targets: Target[] = [];

  /** A stub child in its exec stop, seized with EXITKILL (+ options). */
  stub(options = 0): number {
    const pid = native.clone3Stub(0, stubPath, PTRACE_O.EXITKILL | options);
    this.stubs.push(pid);
    return pid;
  }

  /** Adopt a pid made elsewhere (clone3Stub with a chosen pid). */
  adopt(pid: number): number {
    this.stubs.push(pid);
    return pid;
  }

  async memtool(): Promise<MemTool> {
    const t = await startTarget(fixture('memtool'));
    this.targets.push(t);
    return MemTool.attach(t);
  }

  async target(name: string): Promise<Target> {
    const t = await startTarget(fixture(name));
    this.targets.push(t);
    return t;
  }

  async cleanup(): Promise<void> {
    for (const pid of this.stubs.splice(0)) killAndReap(pid);
    for (const t of this.targets.splice(0)) {
      t.kill('SIGKILL');
      // If we still trace it, its death is reported to us first: reap that report, or its
      // shell waits for ever. ECHILD when we do not trace it.
      killAndReap(t.pid);
      await t.stop();
    }
  }
}

/** A pid that no process holds: a stub's, after it was killed and reaped. */
export function deadPid(): number {
  const pid = native.clone3Stub(0, stubPath, PTRACE_O.EXITKILL);
  killAndReap(pid);
  return pid;
}

/** The stub's ELF entry point and the file bytes there (to compare with its memory). */
export function stubEntry(): { entry: number; bytes: Buffer } {
  const elf = readFileSync(stubPath);
  const entry = Number(elf.readBigUInt64LE(24));
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 1) continue; // PT_LOAD
    const off = Number(elf.readBigUInt64LE(ph + 8));
    const vaddr = Number(elf.readBigUInt64LE(ph + 16));
    const filesz = Number(elf.readBigUInt64LE(ph + 32));
    if (entry >= vaddr && entry < vaddr + filesz) return { entry, bytes: elf.subarray(off + entry - vaddr, off + filesz) };
  }
  throw new Error('stub: entry point in no PT_LOAD segment');
}

/** memtool's buffer pattern (see test/fixtures/memtool.c). */
export function pattern(off: number): number {
  return (Math.floor(off / PAGE) * 7 + (off % PAGE) * 13) & 0xff;
}

export function fnv1a(buf: Buffer): string {
  // 64-bit FNV-1a in two 32-bit halves (BigInt per byte is slow for 100s of KiB).
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < buf.length; i++) {
    lo = (lo ^ buf[i]!) >>> 0;
    // h * 0x100000001b3 = h * 0x1b3 + (h << 40)
    const loMul = lo * 0x1b3;
    const carry = Math.floor(loMul / 0x100000000);
    const newLo = loMul >>> 0;
    const newHi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
    hi = newHi;
    lo = newLo;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** The memtool fixture: its mappings and its line commands. */
export class MemTool {
  private seq = 0;
  private constructor(
    readonly t: Target,
    readonly buf: number,
    readonly bufPages: number,
    readonly other: number,
    readonly otherPages: number,
    readonly hole: number,
  ) {}

  get pid(): number {
    return this.t.pid;
  }

  static async attach(t: Target): Promise<MemTool> {
    const [, buf, bufPages] = (await t.waitFor(/^buf /)).split(' ');
    const [, other, otherPages] = (await t.waitFor(/^other /)).split(' ');
    const [, hole] = (await t.waitFor(/^hole /)).split(' ');
    await t.waitFor('ready');
    return new MemTool(t, parseInt(buf!, 16), Number(bufPages), parseInt(other!, 16), Number(otherPages), parseInt(hole!, 16));
  }

  /** Sends a command; resolves with its result once it is done. */
  async cmd(line: string): Promise<string> {
    return this.send(line)();
  }

  /** Sends a command now; the returned function waits for its result. */
  send(line: string): () => Promise<string> {
    const seq = ++this.seq;
    this.t.write(line + '\n');
    return async () => (await this.t.waitFor(new RegExp(`^ok ${seq} `))).split(' ')[2]!;
  }
}
