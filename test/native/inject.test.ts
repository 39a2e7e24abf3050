// Remote syscall injection (native/inject.cc) through Remote (src/kernel/remote.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { seizeAndStop, detach } from '../../src/kernel/ptrace.js';
import { Remote, findSyscallInsn } from '../../src/kernel/remote.js';
import { MAX_CALLS, Parasite } from '../../src/kernel/parasite.js';
import { readMaps } from '../../src/kernel/procfs.js';
import { readFileSync } from 'node:fs';
import { getReg, getRegSigned } from '../../src/kernel/regs.js';
import { ERESTART, MAP, PROT, PTRACE_O, SIG, SYS } from '../../src/kernel/syscalls.js';
import { Procs, errCode, getRegs, inSyscall, wait } from './util.js';

const procs = new Procs();
afterEach(() => procs.cleanup());

describe('syscall injection', () => {
  it('runs getpid in a child blocked in read() and leaves the read to restart', async () => {
    const t = await procs.target('reader');
    await t.waitFor('ready');
    await inSyscall(t.pid, SYS.read);
    seizeAndStop(t.pid, PTRACE_O.EXITKILL);
    const regs = native.ptraceGetRegs(t.pid);
    // Stopped inside read(): the kernel's restart code is in rax.
    expect(Number(getRegSigned(regs, 'orig_rax'))).toBe(SYS.read);
    expect(Number(getRegSigned(regs, 'rax'))).toBe(-ERESTART.SYS);
    const before = getRegs(t.pid);
    const remote = Remote.forThread(t.pid);
    expect(remote.call(SYS.getpid, 'getpid')).toBe(t.pid);
    expect(remote.call(SYS.gettid, 'gettid')).toBe(t.pid);
    expect(getRegs(t.pid)).toEqual(before);
    detach(t.pid);
    t.write('hello');
    expect(await t.waitFor('got:')).toBe('got:hello');
  });

  it('returns -errno as a coded error', async () => {
    const t = await procs.target('reader');
    await t.waitFor('ready');
    seizeAndStop(t.pid, PTRACE_O.EXITKILL);
    const remote = Remote.forThread(t.pid);
    expect(() => remote.call(SYS.close, 'close', 9999)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: `remote close(${t.pid})` }));
    expect(remote.raw(SYS.close, 9999)).toBe(-9n);
    detach(t.pid);
  });

  it('passes six arguments (mmap) and refuses a seventh', () => {
    const pid = procs.stub();
    const remote = Remote.forThread(pid);
    const want = 0x7e0000000000;
    // MAP_FIXED_NOREPLACE at a chosen address: every argument has to arrive to get it back.
    expect(remote.mmap(want, 8192, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS | MAP.FIXED_NOREPLACE, -1, 0)).toBe(want);
    expect(() => remote.mmap(want, 8192, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS | MAP.FIXED_NOREPLACE, -1, 0)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(errCode(() => native.injectSyscall(pid, remote.syscallIp, SYS.getpid, [1, 2, 3, 4, 5, 6, 7]))).toBe('EINVAL');
  });

  it('faults cleanly when rip is not executable, and leaves the thread as it was', () => {
    const pid = procs.stub();
    const before = getRegs(pid);
    expect(errCode(() => native.injectSyscall(pid, 0x1000, SYS.getpid))).toBe('EFAULT');
    expect(getRegs(pid)).toEqual(before);
    expect(native.injectSyscall(pid, findSyscallInsn(pid), SYS.getpid)).toBe(BigInt(pid));
  });

  it('a signal pending when the injection starts stays pending afterwards', () => {
    const pid = procs.stub();
    native.kill(pid, SIG.USR1);
    const before = getRegs(pid);
    expect(Remote.forThread(pid).call(SYS.getpid, 'getpid')).toBe(pid);
    expect(getRegs(pid)).toEqual(before);
    // Re-sent to the thread (tkill), still queued...
    const info = native.ptracePeekSiginfo(pid, 0, 8, false);
    expect(info.length).toBe(128);
    expect(info.readInt32LE(0)).toBe(SIG.USR1);
    // ...and delivered at the next resume, where the thread was.
    native.ptraceCont(pid);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.USR1, event: 0 });
    expect(getReg(native.ptraceGetRegs(pid), 'rip').toString(16)).toBe(before.rip!.slice(2));
  });

  it('a signal that arrives during the injection keeps its siginfo (a sigqueue value, a timer id)', () => {
    const pid = procs.stub();
    const r = Remote.forThread(pid);
    r.withScratch(4096, (addr) => {
      // The stub queues itself SIGUSR1 with SI_QUEUE and a value; it becomes deliverable at
      // that very syscall's exit, inside the injection, and must stay pending as it was.
      const info = Buffer.alloc(128);
      info.writeInt32LE(SIG.USR1, 0);
      info.writeInt32LE(-1 /* SI_QUEUE */, 8);
      info.writeBigUInt64LE(0x1234n, 24); // si_value
      native.processVmWritev(pid, info, 0, [addr, 128]);
      r.call(SYS.rt_tgsigqueueinfo, 'rt_tgsigqueueinfo', pid, pid, SIG.USR1, addr);
    });
    const pending = native.ptracePeekSiginfo(pid, 0, 8, false);
    expect(pending.length).toBe(128);
    expect([pending.readInt32LE(0), pending.readInt32LE(8), pending.readBigUInt64LE(24)]).toEqual([SIG.USR1, -1, 0x1234n]);
  });

  it('runs several syscalls in one stop, each result its own, the thread left as it was', () => {
    const pid = procs.stub();
    const before = getRegs(pid);
    const ip = findSyscallInsn(pid);
    expect([...native.injectSyscalls(pid, ip, [[SYS.getpid], [SYS.close, 9999], [SYS.gettid]])]).toEqual([BigInt(pid), -9n, BigInt(pid)]);
    expect(getRegs(pid)).toEqual(before);
    // Parked again: a plain continue-and-interrupt finds it in an event stop, as after one call.
    expect(Remote.forThread(pid).call(SYS.getpid, 'getpid')).toBe(pid);
    expect(errCode(() => native.injectSyscalls(pid, ip, [[SYS.getpid, 1, 2, 3, 4, 5, 6, 7]]))).toBe('EINVAL');
    expect(errCode(() => native.injectSyscalls(pid, ip, [[]]))).toBe('EINVAL');
    expect(native.injectSyscalls(pid, ip, []).length).toBe(0);
  });

  it('a batch whose step faults puts the registers back and names the call', () => {
    const pid = procs.stub();
    const before = getRegs(pid);
    let err: (Error & { code?: string }) | undefined;
    try {
      native.injectSyscalls(pid, 0x1000, [[SYS.getpid], [SYS.getpid]]);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('EFAULT');
    expect(err?.message).toMatch(/call 0/);
    expect(getRegs(pid)).toEqual(before);
  });

  it('callAll runs every call and throws the first failure by its name', () => {
    const pid = procs.stub();
    const r = Remote.forThread(pid);
    expect(r.callAll([{ nr: SYS.getpid, name: 'getpid', args: [] }, { nr: SYS.gettid, name: 'gettid', args: [] }])).toEqual([pid, pid]);
    const calls = [
      { nr: SYS.getpid, name: 'getpid', args: [] },
      { nr: SYS.close, name: 'close(9999)', args: [9999] },
      { nr: SYS.close, name: 'close(9998)', args: [9998] },
    ];
    expect(() => r.callAll(calls)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: `remote close(9999)(${pid})` }));
  });

  it('a parasite runs a table of syscalls in one continue, and leaves no mapping behind', () => {
    const pid = procs.stub();
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    const before = getRegs(pid);
    const r = Remote.forThread(pid);
    const p = Parasite.map(r, pid);
    if (typeof p === 'string') throw new Error(p);
    // Code read-execute, never writable; the table's pages read-write.
    const mine = readMaps(pid).filter((m) => m.start >= p.base && m.end <= p.base + p.length);
    expect(mine.map((m) => m.perms)).toEqual(['r-xp', 'rw-p']);
    // More calls than one run takes: split in two, in order.
    const calls = Array.from({ length: MAX_CALLS + 3 }, (_, i) => (i % 3 === 1 ? { nr: SYS.close, name: 'close', args: [9999] } : { nr: SYS.getpid, name: 'getpid', args: [] }));
    expect([...p.run(pid, calls)]).toEqual(calls.map((c) => (c.nr === SYS.close ? -9n : BigInt(pid))));
    // callAll goes through it while it is set; a syscall that writes through a pointer works.
    r.parasite = p;
    expect(r.callAll([{ nr: SYS.gettid, name: 'gettid', args: [] }])).toEqual([pid]);
    r.parasite = undefined;
    expect(getRegs(pid)).toEqual(before);
    p.unmap(r);
    expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toBe(maps);
    expect(r.call(SYS.getpid, 'getpid')).toBe(pid); // parked as after any injection
  });

  it('runInjected: a fault in the code is EFAULT, registers put back; a signal sent meanwhile stays pending', () => {
    const pid = procs.stub();
    const before = getRegs(pid);
    const r = Remote.forThread(pid);
    const p = Parasite.map(r, pid);
    if (typeof p === 'string') throw new Error(p);
    const trap = p.base + native.syscallRunner().length;
    // rbx (the table) at an unmapped address: the first load faults.
    expect(errCode(() => native.runInjected(pid, p.base, trap, 0x1000, p.base + 8192))).toBe('EFAULT');
    expect(getRegs(pid)).toEqual(before);
    // A SIGUSR1 queued before the run is delivered at the continue, held back, and queued again.
    native.kill(pid, SIG.USR1);
    expect([...p.run(pid, [{ nr: SYS.getpid, name: 'getpid', args: [] }])]).toEqual([BigInt(pid)]);
    const info = native.ptracePeekSiginfo(pid, 0, 8, false);
    expect(info.readInt32LE(0)).toBe(SIG.USR1);
    expect(getRegs(pid)).toEqual(before);
    p.unmap(r);
  });

  it('fails with ESRCH on a thread that is not traced', () => {
    expect(errCode(() => native.injectSyscall(1, 0, SYS.getpid))).toBe('ESRCH');
  });
});
