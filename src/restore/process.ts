// Process-wide state from the leader's core: signal actions, rlimits, cwd, umask, name,
// personality, prctl flags, session/group, and last the credentials (which may drop the
// privileges every other step needs).
import { CriuError } from '../errors.js';
import type { ProcessState } from '../images/core.js';
import { PR, SYS } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';
import { putBytes, putString, u64s } from './remote-args.js';
import type { Stub } from './stub.js';
import { readFileSync } from 'node:fs';
import { readStatus } from '../kernel/procfs.js';
import type { Remote } from '../kernel/remote.js';

const PR_SET_PDEATHSIG = 1;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_SET_THP_DISABLE = 41;
const SYS_setgroups = 116;

export function restoreSignalsAndLimits(stub: Stub, p: ProcessState): void {
  const r = stub.remote;
  // The saved (non-default) actions, and default for what the stub ignores: it inherited the
  // restorer's ignored set across its exec (SIG_IGN survives exec). Nothing else differs
  // from a fresh exec, so the other signals need no call (each call is an injection).
  const saved = new Map(p.sigactions.map((a) => [a.sig, a]));
  const ignored = BigInt('0x' + (readStatus(stub.pid).get('SigIgn') ?? '0'));
  for (let sig = 1; sig <= 64; sig++) {
    if (sig === 9 || sig === 19) continue;
    const a = saved.get(sig);
    if (!a && !((ignored >> BigInt(sig - 1)) & 1n)) continue;
    const act = putBytes(stub, a ? u64s(BigInt(a.handler), BigInt(a.flags), BigInt(a.restorer), BigInt(a.mask)) : u64s(0, 0, 0, 0));
    r.call(SYS.rt_sigaction, `rt_sigaction(${sig})`, sig, act, 0, 8);
  }
  // Only the limits that differ from the stub's (which are ours).
  const current = readLimits(stub.pid);
  for (const l of p.rlimits) {
    const now = current[l.resource];
    if (now && now.soft === BigInt(l.soft) && now.hard === BigInt(l.hard)) continue;
    const lim = putBytes(stub, u64s(BigInt(l.soft), BigInt(l.hard)));
    r.call(SYS.prlimit64, `prlimit64(${l.resource})`, 0, l.resource, lim, 0);
  }
}

const UNLIMITED = 0xffffffffffffffffn;

/** /proc/PID/limits, by resource number (its lines come in RLIMIT_* order). */
function readLimits(pid: number): Array<{ soft: bigint; hard: bigint }> {
  const lines = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').slice(1).filter(Boolean);
  const num = (v: string | undefined) => (v === undefined || v === 'unlimited' ? UNLIMITED : BigInt(v));
  return lines.map((l) => {
    const cols = l.slice(26).trim().split(/\s+/);
    return { soft: num(cols[0]), hard: num(cols[1]) };
  });
}

export function restoreProcessMisc(stub: Stub, p: ProcessState, pid: number, log: Logger): void {
  const r = stub.remote;
  if (p.root !== '/') throw new CriuError('ENOTSUP', `pid ${pid} ran chrooted in ${p.root}: not supported yet`);
  r.call(SYS.chdir, `chdir(${p.cwd})`, putString(stub, p.cwd));
  r.call(SYS.umask, 'umask', p.umask);
  r.call(SYS.personality, 'personality', p.personality);
  r.call(SYS.prctl, 'prctl(PR_SET_NAME)', PR.SET_NAME, putString(stub, p.comm));
  if (p.childSubreaper) r.call(SYS.prctl, 'prctl(PR_SET_CHILD_SUBREAPER)', PR.SET_CHILD_SUBREAPER, 1);
  if (p.thpDisabled) r.call(SYS.prctl, 'prctl(PR_SET_THP_DISABLE)', PR_SET_THP_DISABLE, 1, 0, 0, 0);
  // Session and group were set when the process was created (src/restore/tree.ts).
  void log;
}

/** Credentials and the flags that must come after everything privileged. */
/**
 * Credentials and the flags that must come after everything privileged. They are per
 * thread in the kernel (libc's setuid broadcasts to every thread): run this in each one.
 */
export function restoreCredentials(stub: Stub, p: ProcessState, r: Remote = stub.remote): void {
  const [ruid, euid, suid] = p.creds.uid;
  const [rgid, egid, sgid] = p.creds.gid;
  const groups = Buffer.alloc(p.creds.groups.length * 4);
  p.creds.groups.forEach((g, i) => groups.writeUInt32LE(g, i * 4));
  r.call(SYS_setgroups, 'setgroups', p.creds.groups.length, putBytes(stub, groups));
  r.call(SYS.setresgid, 'setresgid', rgid ?? 0, egid ?? 0, sgid ?? 0);
  r.call(SYS.setresuid, 'setresuid', ruid ?? 0, euid ?? 0, suid ?? 0);
  // After the credentials: a change of uid/gid clears the parent-death signal (commit_creds),
  // so set before them it is lost for every process that is not root.
  if (p.pdeathsig) r.call(SYS.prctl, 'prctl(PR_SET_PDEATHSIG)', PR_SET_PDEATHSIG, p.pdeathsig);
  if (p.noNewPrivs) r.call(SYS.prctl, 'prctl(PR_SET_NO_NEW_PRIVS)', PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  r.call(SYS.prctl, 'prctl(PR_SET_DUMPABLE)', PR.SET_DUMPABLE, p.dumpable);
}
