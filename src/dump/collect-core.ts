// Per-thread state (core-TID.json) and the process-wide state kept in the leader's core.
// What ptrace and /proc cannot give is read by syscalls injected into the stopped thread,
// with their results written to a scratch page we map in the target for the dump.
import { readFileSync, readlinkSync } from 'node:fs';
import { native } from '../kernel/native.js';
import { getReg, getRegSigned } from '../kernel/regs.js';
import { readRemote, writeRemote, type Remote, type RemoteCall } from '../kernel/remote.js';
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

  // stack_t at 0, the tid address at 64: both in one stop.
  remote.callAll([
    { nr: SYS.sigaltstack, name: 'sigaltstack', args: [0, scratch] },
    { nr: SYS.prctl, name: 'prctl(PR_GET_TID_ADDRESS)', args: [PR.GET_TID_ADDRESS, scratch + 64] },
  ]);
  const got = readRemote(pid, scratch, 72);
  const ss = got.subarray(0, 24);
  const tidAddress = got.readBigUInt64LE(64);

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
const RLIMIT_NLIMITS = 16;

const PR_GET_PDEATHSIG = 2;
const PR_GET_NO_NEW_PRIVS = 39;
const PR_GET_THP_DISABLE = 42;

// Where each getter's result lands in the scratch page (one read of it after the batch).
const AT_SIGACTIONS = 0; // 62 struct sigactions of 32 bytes
const AT_RLIMITS = 2048; // 16 struct rlimits of 16
const AT_PDEATHSIG = AT_RLIMITS + RLIMIT_NLIMITS * 16; // int
const AT_SUBREAPER = AT_PDEATHSIG + 4; // int
const SCRATCH_USED = AT_SUBREAPER + 4;

const SIGNALS = Array.from({ length: NSIG }, (_, i) => i + 1).filter((s) => s !== SIGKILL && s !== SIGSTOP);

/** The process-wide getters, all run in one stop of the leader (see Remote.callAll). */
function processCalls(scratch: number): RemoteCall[] {
  return [
    ...SIGNALS.map((sig, i) => ({ nr: SYS.rt_sigaction, name: `rt_sigaction(${sig})`, args: [sig, 0, scratch + AT_SIGACTIONS + 32 * i, 8] })),
    ...Array.from({ length: RLIMIT_NLIMITS }, (_, r) => ({ nr: SYS.prlimit64, name: `prlimit64(${r})`, args: [0, r, 0, scratch + AT_RLIMITS + 16 * r] })),
    { nr: SYS.prctl, name: 'prctl(PR_GET_DUMPABLE)', args: [PR.GET_DUMPABLE] },
    { nr: SYS.prctl, name: 'prctl(PR_GET_NO_NEW_PRIVS)', args: [PR_GET_NO_NEW_PRIVS] },
    { nr: SYS.prctl, name: 'prctl(PR_GET_PDEATHSIG)', args: [PR_GET_PDEATHSIG, scratch + AT_PDEATHSIG] },
    { nr: SYS.prctl, name: 'prctl(PR_GET_CHILD_SUBREAPER)', args: [PR.GET_CHILD_SUBREAPER, scratch + AT_SUBREAPER] },
    { nr: SYS.prctl, name: 'prctl(PR_GET_THP_DISABLE)', args: [PR_GET_THP_DISABLE] },
  ];
}

function sigactions(b: Buffer): Sigaction[] {
  const out: Sigaction[] = [];
  SIGNALS.forEach((sig, i) => {
    const at = AT_SIGACTIONS + 32 * i;
    const [handler, flags, restorer, mask] = [0, 8, 16, 24].map((o) => b.readBigUInt64LE(at + o)) as [bigint, bigint, bigint, bigint];
    if (handler === 0n && flags === 0n && mask === 0n) return; // SIG_DFL, nothing to restore
    out.push({ sig, handler: toHex(handler), flags: toHex(flags), restorer: toHex(restorer), mask: toHex(mask) });
  });
  return out;
}

function rlimits(b: Buffer) {
  return Array.from({ length: RLIMIT_NLIMITS }, (_, resource) => ({
    resource,
    soft: toHex(b.readBigUInt64LE(AT_RLIMITS + 16 * resource)),
    hard: toHex(b.readBigUInt64LE(AT_RLIMITS + 16 * resource + 8)),
  }));
}

export function collectProcess(pid: number, remote: Remote, scratch: number, stoppedBy: number): ProcessState {
  const status = readStatus(pid);
  const stat = readStat(pid);
  const ids = (key: string) => (status.get(key) ?? '').split(/\s+/).filter(Boolean).map(Number);
  // The int getters write only 4 bytes: start from zeros.
  writeRemote(pid, scratch + AT_PDEATHSIG, Buffer.alloc(8));
  const calls = processCalls(scratch);
  const r = remote.callAll(calls);
  const result = (name: string) => r[calls.findIndex((c) => c.name === name)]!;
  const b = readRemote(pid, scratch, SCRATCH_USED);
  return {
    comm: readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, ''),
    sigactions: sigactions(b),
    sharedPending: pendingSignals(pid, true),
    rlimits: rlimits(b),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    root: readlinkSync(`/proc/${pid}/root`),
    umask: parseInt(status.get('Umask') ?? '22', 8),
    personality: parseInt(readFileSync(`/proc/${pid}/personality`, 'utf8').trim(), 16),
    creds: { uid: ids('Uid'), gid: ids('Gid'), groups: ids('Groups') },
    pgid: Number(stat[5]),
    sid: Number(stat[6]),
    dumpable: result('prctl(PR_GET_DUMPABLE)'),
    noNewPrivs: result('prctl(PR_GET_NO_NEW_PRIVS)'),
    pdeathsig: b.readInt32LE(AT_PDEATHSIG),
    childSubreaper: b.readInt32LE(AT_SUBREAPER),
    thpDisabled: result('prctl(PR_GET_THP_DISABLE)'),
    stoppedBy,
  };
}
