// ptrace requests, each on a real tracee: mostly stub children (clone3Stub: seized, in their
// exec stop), and a C fixture where glibc state (rseq) matters.
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/kernel/native.js';
import { seizeAndStop } from '../../src/kernel/ptrace.js';
import { readMaps, readStatus } from '../../src/kernel/procfs.js';
import { getReg, getRegSigned, setReg, USER_REGS_SIZE, REG_NAMES } from '../../src/kernel/regs.js';
import { ERESTART, NT, PTRACE_EVENT, PTRACE_O, SIG, SYS, WNOHANG } from '../../src/kernel/syscalls.js';
import { Procs, deadPid, errCode, stubEntry, wait } from './util.js';

const procs = new Procs();
afterEach(() => procs.cleanup());

const bit = (sig: number) => 1n << BigInt(sig - 1);

describe('ptrace: stops and resumption', () => {
  it('syscall stops with TRACESYSGOOD and their event messages, cont and interrupt', () => {
    const pid = procs.stub();
    // clone3Stub leaves it stopped at its entry point, nothing run yet.
    expect(Number(getReg(native.ptraceGetRegs(pid), 'rip'))).toBe(stubEntry().entry);

    // Without TRACESYSGOOD a syscall stop reports plain SIGTRAP; with it, SIGTRAP | 0x80.
    native.ptraceSetOptions(pid, PTRACE_O.EXITKILL | PTRACE_O.TRACESYSGOOD);
    native.ptraceSyscall(pid);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.TRAP | 0x80, event: 0 });
    expect(Number(getRegSigned(native.ptraceGetRegs(pid), 'orig_rax'))).toBe(SYS.pause);
    expect(native.ptraceGetEventMsg(pid)).toBe(1n); // PTRACE_EVENTMSG_SYSCALL_ENTRY

    // Running (blocked in pause): stop-only requests fail, nothing to wait for.
    native.ptraceSyscall(pid);
    expect(wait(pid, WNOHANG).pid).toBe(0);
    expect(errCode(() => native.ptraceCont(pid))).toBe('ESRCH');
    expect(errCode(() => native.ptraceGetRegs(pid))).toBe('ESRCH');

    // The interrupt ends pause() with the kernel's restart code, at the syscall-exit stop.
    native.ptraceInterrupt(pid);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.TRAP | 0x80, event: 0 });
    expect(native.ptraceGetEventMsg(pid)).toBe(2n); // PTRACE_EVENTMSG_SYSCALL_EXIT
    expect(Number(getRegSigned(native.ptraceGetRegs(pid), 'rax'))).toBe(-ERESTART.NOHAND);

    // Options off again: the restarted pause() stops at its entry with a plain SIGTRAP.
    native.ptraceSetOptions(pid, PTRACE_O.EXITKILL);
    native.ptraceSyscall(pid);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.TRAP, event: 0 });
    expect(Number(getRegSigned(native.ptraceGetRegs(pid), 'orig_rax'))).toBe(SYS.pause);

    // Cont: it waits in pause() until interrupted, then reports the interrupt's event stop.
    native.ptraceCont(pid);
    expect(wait(pid, WNOHANG).pid).toBe(0);
    native.ptraceInterrupt(pid);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.TRAP, event: PTRACE_EVENT.STOP });
    const regs = native.ptraceGetRegs(pid);
    expect(Number(getRegSigned(regs, 'rax'))).toBe(-ERESTART.NOHAND);
    expect(Number(getRegSigned(regs, 'orig_rax'))).toBe(SYS.pause);
  });

  it('singlesteps exactly one instruction, and refuses an invalid signal', () => {
    const pid = procs.stub();
    const before = native.ptraceGetRegs(pid);
    const { entry } = stubEntry();
    // At the exec entry every general register but rsp is zero; the stub's first
    // instruction loads 34 (pause) into one of them.
    const holding34 = (r: Buffer) => REG_NAMES.slice(0, 15).filter((n) => getReg(r, n) === 34n);
    expect(holding34(before)).toEqual([]);
    expect(errCode(() => native.ptraceSinglestep(pid, 1000))).toBe('EIO');
    native.ptraceSinglestep(pid);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.TRAP, event: 0 });
    const after = native.ptraceGetRegs(pid);
    const rip = Number(getReg(after, 'rip'));
    expect(rip).toBeGreaterThan(entry);
    expect(rip).toBeLessThanOrEqual(entry + 15);
    expect(holding34(after)).toHaveLength(1);
  });

  it('detach lets the tracee go (with a signal), seize takes it again', () => {
    const pid = procs.stub();
    native.ptraceDetach(pid);
    expect(errCode(() => native.ptraceDetach(pid))).toBe('ESRCH');
    expect(errCode(() => native.ptraceInterrupt(pid))).toBe('ESRCH');
    expect(readStatus(pid).get('TracerPid')).toBe('0');

    expect(errCode(() => native.ptraceSeize(pid, 1 << 30))).toBe('EIO');
    native.ptraceSeize(pid, PTRACE_O.EXITKILL);
    expect(errCode(() => native.ptraceSeize(pid, 0))).toBe('EPERM');
    native.ptraceInterrupt(pid);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', event: PTRACE_EVENT.STOP });
    expect(errCode(() => native.ptraceSetOptions(pid, 1 << 30))).toBe('EINVAL');

    // At a signal-delivery stop the signal given to detach replaces the one being delivered:
    // the stub dies of SIGTERM, not of the SIGUSR1 it was sent.
    native.ptraceCont(pid);
    native.kill(pid, SIG.USR1);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.USR1, event: 0 });
    native.ptraceDetach(pid, SIG.TERM);
    expect(wait(pid)).toMatchObject({ kind: 'signaled', signal: SIG.TERM });
  });

  it('fails with ESRCH on a pid that does not exist', () => {
    const dead = deadPid();
    for (const call of [
      () => native.ptraceSeize(dead, 0),
      () => native.ptraceInterrupt(dead),
      () => native.ptraceCont(dead),
      () => native.ptraceDetach(dead),
      () => native.ptraceSinglestep(dead),
      () => native.ptraceSyscall(dead),
      () => native.ptraceListen(dead),
      () => native.ptraceSetOptions(dead, 0),
      () => native.ptraceGetEventMsg(dead),
      () => native.ptraceGetRegs(dead),
      () => native.ptraceSetRegs(dead, Buffer.alloc(USER_REGS_SIZE)),
      () => native.ptraceGetRegset(dead, NT.PRSTATUS, 4096),
      () => native.ptraceSetRegset(dead, NT.PRSTATUS, Buffer.alloc(USER_REGS_SIZE)),
      () => native.ptraceGetSigmask(dead),
      () => native.ptraceSetSigmask(dead, 0n),
      () => native.ptracePeekSiginfo(dead, 0, 1, false),
      () => native.ptraceGetRseqConfiguration(dead),
      () => native.ptracePeek(dead, 0x1000),
      () => native.ptracePoke(dead, 0x1000, 0n),
    ]) {
      expect(errCode(call)).toBe('ESRCH');
    }
  });

  it('errors carry code, errno and the call', () => {
    const dead = deadPid();
    try {
      native.ptraceGetRegs(dead);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(Error);
      expect(e).toMatchObject({ code: 'ESRCH', errno: 3, syscall: `ptrace(PTRACE_GETREGS)(${dead})` });
      expect((e as Error).message).toContain('No such process');
    }
  });

  it('listens in a group stop and reports the SIGCONT that ends it', () => {
    const pid = procs.stub();
    // Listen needs an event stop; the exec stop is not one.
    expect(errCode(() => native.ptraceListen(pid))).toBe('EIO');
    native.ptraceCont(pid);
    native.kill(pid, SIG.STOP);
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.STOP, event: 0 });
    native.ptraceCont(pid, SIG.STOP); // deliver it: a group stop follows
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.STOP, event: PTRACE_EVENT.STOP });

    native.ptraceListen(pid);
    expect(wait(pid, WNOHANG).pid).toBe(0);
    native.kill(pid, SIG.CONT);
    // The group stop ends; a listening tracee reports that as a new event stop.
    expect(wait(pid)).toMatchObject({ kind: 'stopped', signal: SIG.TRAP, event: PTRACE_EVENT.STOP });
  });
});

describe('ptrace: registers', () => {
  it('setregs round trip, and the kernel checks what it is given', () => {
    const pid = procs.stub();
    const regs = native.ptraceGetRegs(pid);
    expect(regs.length).toBe(USER_REGS_SIZE);
    const changed = Buffer.from(regs);
    setReg(changed, 'r12', 0x1122334455667788n);
    setReg(changed, 'rbx', 0xdeadbeefn);
    setReg(changed, 'rip', getReg(regs, 'rip') + 2n);
    native.ptraceSetRegs(pid, changed);
    expect(native.ptraceGetRegs(pid)).toEqual(changed);

    expect(errCode(() => native.ptraceSetRegs(pid, Buffer.alloc(100)))).toBe('EINVAL');
    expect(errCode(() => native.ptraceSetRegs(pid, 'x' as unknown as Buffer))).toBe('EINVAL');
    // A kernel-mode code selector (RPL 0) is refused.
    const bad = Buffer.from(changed);
    setReg(bad, 'cs', 0x10);
    expect(errCode(() => native.ptraceSetRegs(pid, bad))).toBe('EIO');
    expect(native.ptraceGetRegs(pid)).toEqual(changed);
  });

  it('NT_PRSTATUS regset equals getregs', () => {
    const pid = procs.stub();
    const regs = native.ptraceGetRegs(pid);
    // Asked for more, trimmed to what the kernel filled in.
    const prstatus = native.ptraceGetRegset(pid, NT.PRSTATUS, 4096);
    expect(prstatus).toEqual(regs);
    setReg(prstatus, 'r13', 0x5555n);
    native.ptraceSetRegset(pid, NT.PRSTATUS, prstatus);
    expect(getReg(native.ptraceGetRegs(pid), 'r13')).toBe(0x5555n);
    expect(errCode(() => native.ptraceGetRegset(pid, 0x999, 4096))).toBe('EINVAL');
    expect(errCode(() => native.ptraceGetRegset(pid, NT.PRSTATUS, -1))).toBe('EINVAL');
  });

  it('NT_X86_XSTATE round trip: xmm0 and MXCSR', () => {
    const pid = procs.stub();
    const xs = native.ptraceGetRegset(pid, NT.X86_XSTATE, 1 << 16);
    // 512-byte legacy FXSAVE area + 64-byte XSAVE header at least.
    expect(xs.length).toBeGreaterThanOrEqual(576);
    expect(native.ptraceGetRegset(pid, NT.X86_XSTATE, 1 << 16)).toEqual(xs);

    const MXCSR = 24;
    const XMM0 = 160;
    const XSTATE_BV = 512;
    const changed = Buffer.from(xs);
    changed.writeUInt32LE(0x7f80, MXCSR); // round toward zero
    for (let i = 0; i < 16; i++) changed[XMM0 + i] = 0xa0 + i;
    changed.writeBigUInt64LE(changed.readBigUInt64LE(XSTATE_BV) | 2n, XSTATE_BV); // SSE state present
    native.ptraceSetRegset(pid, NT.X86_XSTATE, changed);
    const back = native.ptraceGetRegset(pid, NT.X86_XSTATE, 1 << 16);
    expect(back.readUInt32LE(MXCSR)).toBe(0x7f80);
    expect(back.subarray(XMM0, XMM0 + 16)).toEqual(changed.subarray(XMM0, XMM0 + 16));

    // Reserved MXCSR bits are refused, and nothing changes.
    const bad = Buffer.from(back);
    bad.writeUInt32LE((0x80000000 | 0x1f80) >>> 0, MXCSR);
    expect(errCode(() => native.ptraceSetRegset(pid, NT.X86_XSTATE, bad))).toBe('EINVAL');
    expect(native.ptraceGetRegset(pid, NT.X86_XSTATE, 1 << 16).readUInt32LE(MXCSR)).toBe(0x7f80);
  });
});

describe('ptrace: signals', () => {
  it('sigmask round trip; SIGKILL and SIGSTOP cannot be blocked', () => {
    const pid = procs.stub();
    const mask = bit(SIG.USR1) | bit(SIG.USR2) | bit(SIG.HUP);
    native.ptraceSetSigmask(pid, mask);
    expect(native.ptraceGetSigmask(pid)).toBe(mask);
    native.ptraceSetSigmask(pid, (1n << 64n) - 1n);
    expect(native.ptraceGetSigmask(pid)).toBe((1n << 64n) - 1n - bit(SIG.KILL) - bit(SIG.STOP));
    native.ptraceSetSigmask(pid, 0n);
    expect(native.ptraceGetSigmask(pid)).toBe(0n);
  });

  it('peeksiginfo sees blocked signals pending: shared (kill) and per thread (tgkill)', () => {
    const pid = procs.stub();
    native.ptraceSetSigmask(pid, bit(SIG.USR1) | bit(SIG.USR2));
    expect(native.ptracePeekSiginfo(pid, 0, 8, true).length).toBe(0);
    native.kill(pid, SIG.USR1);
    native.tgkill(pid, pid, SIG.USR2);

    const shared = native.ptracePeekSiginfo(pid, 0, 8, true);
    expect(shared.length).toBe(128);
    expect(shared.readInt32LE(0)).toBe(SIG.USR1); // si_signo
    expect(shared.readInt32LE(8)).toBe(0); // si_code SI_USER
    expect(shared.readInt32LE(16)).toBe(process.pid); // si_pid
    expect(shared.readUInt32LE(20)).toBe(process.getuid!()); // si_uid

    const own = native.ptracePeekSiginfo(pid, 0, 8, false);
    expect(own.length).toBe(128);
    expect(own.readInt32LE(0)).toBe(SIG.USR2);
    expect(own.readInt32LE(8)).toBe(-6); // SI_TKILL
    expect(native.ptracePeekSiginfo(pid, 1, 8, false).length).toBe(0);

    expect(errCode(() => native.ptracePeekSiginfo(pid, 0, -1, false))).toBe('EINVAL');
  });
});

describe('ptrace: memory words and per-thread state', () => {
  it('peek reads the stack and the code as in the file; poke writes', () => {
    const pid = procs.stub();
    const regs = native.ptraceGetRegs(pid);
    const rsp = getReg(regs, 'rsp');
    expect(native.ptracePeek(pid, rsp)).toBe(1n); // argc at the exec entry
    const { entry, bytes } = stubEntry();
    expect(native.ptracePeek(pid, entry)).toBe(bytes.readBigUInt64LE(0));

    const at = rsp - 256n;
    native.ptracePoke(pid, at, 0x0123456789abcdefn);
    expect(native.ptracePeek(pid, at)).toBe(0x0123456789abcdefn);
    native.ptracePoke(pid, at, 0xfedcba9876543210n);
    expect(native.ptracePeek(pid, at)).toBe(0xfedcba9876543210n);

    expect(errCode(() => native.ptracePeek(pid, 0))).toBe('EIO');
    expect(errCode(() => native.ptracePoke(pid, 0, 1n))).toBe('EIO');
  });

  it('rseq configuration: registered by glibc in a C program, none in the stub', async () => {
    const t = await procs.target('reader');
    await t.waitFor('ready');
    seizeAndStop(t.pid, PTRACE_O.EXITKILL);
    const conf = native.ptraceGetRseqConfiguration(t.pid);
    expect(conf.rseqAbiPointer).not.toBe(0n);
    expect(conf.rseqAbiSize).toBeGreaterThanOrEqual(20);
    expect(conf.signature).toBe(0x53053053); // glibc's RSEQ_SIG on x86
    const p = Number(conf.rseqAbiPointer);
    expect(readMaps(t.pid).some((m) => m.start <= p && p + conf.rseqAbiSize <= m.end && m.perms.startsWith('rw'))).toBe(true);

    const stub = procs.stub();
    expect(native.ptraceGetRseqConfiguration(stub)).toMatchObject({ rseqAbiPointer: 0n, rseqAbiSize: 0 });
  });
});
