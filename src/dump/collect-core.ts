// Per-thread state (core-TID.json) and the process-wide state kept in the leader's core.
// What ptrace and /proc cannot give is read by syscalls injected into the stopped thread,
// with their results written to a scratch page we map in the target for the dump.
import { readFileSync, readlinkSync } from 'node:fs';
import { native } from '../kernel/native.js';
import { getReg, getRegSigned } from '../kernel/regs.js';
import { readRemote, writeRemote, type Remote } from '../kernel/remote.js';
import { readStat, readStatus } from '../kernel/procfs.js';
import { NT, PR, SYS } from '../kernel/syscalls.js';
import type { Core, ProcessState, Sigaction } from '../images/core.js';
import { toHex } from '../images/mm.js';
import { regsToJson } from '../kernel/regs.js';

const XSTATE_MAX = 64 * 1024;
const SIGINFO_SIZE = 128;

/** All queued siginfo records of a thread (or of the process with shared). */
export function pendingSignals(tid: number, shared: boolean): string[] {
  const out: string[] = [];
  for (;;) {
    const buf = native.ptracePeekSiginfo(tid, out.length, 32, shared);
    const n = buf.length / SIGINFO_SIZE;
    for (let i = 0; i < n; i++) out.push(buf.subarray(i * SIGINFO_SIZE, (i + 1) * SIGINFO_SIZE).toString('base64'));
    if (n < 32) return out;
  }
}

const SYS_RESTART_SYSCALL = 219n;

/**
 * Which syscall a thread in restart_syscall is resuming. The kernel keeps that in its
 * restart block, which a new process cannot have; the code before rip usually says it:
 * libc loads the number with `mov $nr, %eax` (b8 imm32) right before `syscall`.
 */
export function restartedSyscall(pid: number, rip: bigint): number | undefined {
  const at = Number(rip) - 2 - 16;
  let code: Buffer;
  try {
    code = readRemote(pid, at, 16);
  } catch {
    return undefined;
  }
  for (let i = 16 - 5; i >= 0; i--) {
    if (code[i] === 0xb8) {
      const nr = code.readUInt32LE(i + 1);
      if (nr < 512) return nr;
    }
  }
  return undefined;
}

export function collectThread(pid: number, tid: number, remote: Remote, scratch: number): Core {
  const regs = native.ptraceGetRegs(tid);
  const restartSyscall = getRegSigned(regs, 'orig_rax') === SYS_RESTART_SYSCALL ? restartedSyscall(pid, getReg(regs, 'rip')) : undefined;
  const xstate = native.ptraceGetRegset(tid, NT.X86_XSTATE, XSTATE_MAX);

  remote.call(SYS.sigaltstack, 'sigaltstack', 0, scratch);
  const ss = readRemote(pid, scratch, 24);

  remote.call(SYS.prctl, 'prctl(PR_GET_TID_ADDRESS)', PR.GET_TID_ADDRESS, scratch);
  const tidAddress = readRemote(pid, scratch, 8).readBigUInt64LE(0);

  const rseq = native.ptraceGetRseqConfiguration(tid);
  const robust = native.getRobustList(tid);
  return {
    tid,
    pid,
    comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').replace(/\n$/, ''),
    regs: regsToJson(regs),
    xstate: xstate.toString('base64'),
    sigmask: toHex(native.ptraceGetSigmask(tid)),
    pending: pendingSignals(tid, false),
    sigaltstack: { sp: toHex(ss.readBigUInt64LE(0)), flags: ss.readInt32LE(8), size: Number(ss.readBigUInt64LE(16)) },
    rseq:
      rseq.rseqAbiPointer === 0n
        ? null
        : { ptr: toHex(rseq.rseqAbiPointer), size: rseq.rseqAbiSize, signature: rseq.signature, flags: rseq.flags },
    robustList: { head: toHex(robust.head), len: robust.len },
    tidAddress: toHex(tidAddress),
    inSyscall: getRegSigned(regs, 'orig_rax') >= 0n,
    ...(restartSyscall !== undefined ? { restartSyscall } : {}),
  };
}

const SIGKILL = 9;
const SIGSTOP = 19;
const NSIG = 64;

function sigactions(pid: number, remote: Remote, scratch: number): Sigaction[] {
  const out: Sigaction[] = [];
  for (let sig = 1; sig <= NSIG; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    remote.call(SYS.rt_sigaction, `rt_sigaction(${sig})`, sig, 0, scratch, 8);
    const b = readRemote(pid, scratch, 32);
    const [handler, flags, restorer, mask] = [0, 8, 16, 24].map((o) => b.readBigUInt64LE(o)) as [bigint, bigint, bigint, bigint];
    if (handler === 0n && flags === 0n && mask === 0n) continue; // SIG_DFL, nothing to restore
    out.push({ sig, handler: toHex(handler), flags: toHex(flags), restorer: toHex(restorer), mask: toHex(mask) });
  }
  return out;
}

const RLIMIT_NLIMITS = 16;

function rlimits(pid: number, remote: Remote, scratch: number) {
  const out = [];
  for (let resource = 0; resource < RLIMIT_NLIMITS; resource++) {
    remote.call(SYS.prlimit64, `prlimit64(${resource})`, 0, resource, 0, scratch);
    const b = readRemote(pid, scratch, 16);
    out.push({ resource, soft: toHex(b.readBigUInt64LE(0)), hard: toHex(b.readBigUInt64LE(8)) });
  }
  return out;
}

/** prctl(option, &int) style getters: the value comes back through the scratch page. */
function prctlInt(pid: number, remote: Remote, scratch: number, option: number, name: string): number {
  writeRemote(pid, scratch, Buffer.alloc(4));
  remote.call(SYS.prctl, `prctl(${name})`, option, scratch);
  return readRemote(pid, scratch, 4).readInt32LE(0);
}

const PR_GET_PDEATHSIG = 2;
const PR_GET_NO_NEW_PRIVS = 39;
const PR_GET_THP_DISABLE = 42;

export function collectProcess(pid: number, remote: Remote, scratch: number, stoppedBy: number): ProcessState {
  const status = readStatus(pid);
  const stat = readStat(pid);
  const ids = (key: string) => (status.get(key) ?? '').split(/\s+/).filter(Boolean).map(Number);
  return {
    comm: readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, ''),
    sigactions: sigactions(pid, remote, scratch),
    sharedPending: pendingSignals(pid, true),
    rlimits: rlimits(pid, remote, scratch),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    root: readlinkSync(`/proc/${pid}/root`),
    umask: parseInt(status.get('Umask') ?? '22', 8),
    personality: parseInt(readFileSync(`/proc/${pid}/personality`, 'utf8').trim(), 16),
    creds: { uid: ids('Uid'), gid: ids('Gid'), groups: ids('Groups') },
    pgid: Number(stat[5]),
    sid: Number(stat[6]),
    dumpable: remote.call(SYS.prctl, 'prctl(PR_GET_DUMPABLE)', PR.GET_DUMPABLE),
    noNewPrivs: remote.call(SYS.prctl, 'prctl(PR_GET_NO_NEW_PRIVS)', PR_GET_NO_NEW_PRIVS),
    pdeathsig: prctlInt(pid, remote, scratch, PR_GET_PDEATHSIG, 'PR_GET_PDEATHSIG'),
    childSubreaper: prctlInt(pid, remote, scratch, PR.GET_CHILD_SUBREAPER, 'PR_GET_CHILD_SUBREAPER'),
    thpDisabled: remote.call(SYS.prctl, 'prctl(PR_GET_THP_DISABLE)', PR_GET_THP_DISABLE),
    stoppedBy,
  };
}
