// Growing a process out of the stub: create it with the saved PID, give it a parking page
// to run injected syscalls from, then clear the stub's own mappings and move its vDSO and
// vvar pages to where the dumped process had them.
//
//   stub (0x400000 text, its stack, [vvar][vvar_vclock][vdso] somewhere)
//     ─► mmap parking page P (free in both layouts), write `syscall` at P
//     ─► munmap everything of the stub but the vDSO group and P
//     ─► mremap [vvar], [vvar_vclock], [vdso] by one delta (via a temporary spot if the
//        old and new places overlap): moving one alone crashes the first vDSO call
import { CriuError } from '../errors.js';
import { addr, type Vma } from '../images/mm.js';
import { native, stubPath, hasCode } from '../kernel/native.js';
import { describePid, readMaps, type MapEntry } from '../kernel/procfs.js';
import { Remote, findSyscallInsn, writeRemote } from '../kernel/remote.js';
import { MAP, MREMAP, PROT, PTRACE_O, SIG, SYS } from '../kernel/syscalls.js';
import type { Logger } from '../log.js';

export const PARK_LEN = 64 * 1024;

export interface Stub {
  pid: number;
  remote: Remote;
  /** Scratch memory inside the parking area for syscall arguments. */
  scratch: number;
  scratchLen: number;
  park: number;
}

export function createStub(pid: number, log: Logger): number {
  const owner = describePid(pid);
  if (owner) throw new CriuError('EEXIST', `PID ${pid} is taken by ${owner}`);
  try {
    return native.clone3Stub(pid, stubPath, PTRACE_O.EXITKILL);
  } catch (e) {
    if (hasCode(e, 'EEXIST')) throw new CriuError('EEXIST', `PID ${pid} is taken by ${describePid(pid) ?? 'a process that just appeared'}`, { cause: e });
    if (hasCode(e, 'EINVAL')) throw new CriuError('EINVAL', `PID ${pid} cannot be created here (above pid_max?)`, { cause: e });
    throw e;
  } finally {
    log.debug(`stub for pid ${pid}`);
  }
}

/** Kills a stub (or a half-restored process) and collects it: nothing half-alive remains. */
export function destroyStub(pid: number): void {
  try {
    native.kill(pid, SIG.KILL);
  } catch {
    /* gone already */
  }
  try {
    native.waitpid(pid, 0);
  } catch {
    /* not ours to wait for, or reaped */
  }
}

const overlaps = (a0: number, a1: number, b0: number, b1: number) => a0 < b1 && b0 < a1;

/** The lowest address where len bytes fit clear of every range given. */
function findFree(len: number, taken: Array<[number, number]>, from = 0x10000): number {
  const sorted = [...taken].sort((a, b) => a[0] - b[0]);
  let at = from;
  for (const [s, e] of sorted) {
    if (overlaps(at, at + len, s, e)) at = Math.max(at, e);
  }
  if (at + len > 0x7ffffffff000) throw new CriuError('ENOMEM', 'no free address range for the parking page');
  return at;
}

const SPECIAL = ['[vvar]', '[vvar_vclock]', '[vdso]'] as const;

/**
 * Parks the stub and clears its mappings. `target` is the layout to be created; `avoid`
 * the layouts of every other process of the tree (children forked from this stub inherit
 * its parking page, so it must be free in their layouts too).
 */
export function prepareStub(pid: number, target: Vma[], avoid: Vma[] = []): Stub {
  const maps = readMaps(pid);
  const taken: Array<[number, number]> = [...maps.map((m): [number, number] => [m.start, m.end]), ...[...target, ...avoid].map((v): [number, number] => [addr(v.start), addr(v.end)])];
  const first = new Remote(pid, findSyscallInsn(pid, maps), false);
  const park = first.mmap(findFree(PARK_LEN, taken), PARK_LEN, PROT.READ | PROT.WRITE | PROT.EXEC, MAP.PRIVATE | MAP.ANONYMOUS | MAP.FIXED_NOREPLACE);
  writeRemote(pid, park, Buffer.from([0x0f, 0x05]));
  const remote = new Remote(pid, park, false);
  for (const m of maps) {
    if ((SPECIAL as readonly string[]).includes(m.name) || m.name === '[vsyscall]') continue;
    remote.munmap(m.start, m.end - m.start);
  }
  moveVdso(remote, maps, target, taken);
  return { pid, remote, park, scratch: park + 4096, scratchLen: PARK_LEN - 4096 };
}

/**
 * A child forked from a prepared stub has its parking page and its vDSO already (at the
 * parent's place): it only needs its own vDSO place, which an exec'd child may have elsewhere.
 */
export function prepareForked(pid: number, parent: Stub, target: Vma[], avoid: Vma[]): Stub {
  const maps = readMaps(pid);
  const taken: Array<[number, number]> = [...maps.map((m): [number, number] => [m.start, m.end]), ...[...target, ...avoid].map((v): [number, number] => [addr(v.start), addr(v.end)])];
  const remote = new Remote(pid, parent.park, false);
  moveVdso(remote, maps, target, taken);
  return { pid, remote, park: parent.park, scratch: parent.scratch, scratchLen: parent.scratchLen };
}

function moveVdso(remote: Remote, maps: MapEntry[], target: Vma[], taken: Array<[number, number]>): void {
  const have = SPECIAL.map((n) => maps.find((m) => m.name === n));
  const want = SPECIAL.map((n) => target.find((v) => v.name === n));
  if (want.every((w) => !w)) {
    // The dumped process had no vDSO: drop the stub's.
    for (const h of have) if (h) remote.munmap(h.start, h.end - h.start);
    return;
  }
  let delta: number | undefined;
  for (let i = 0; i < SPECIAL.length; i++) {
    const h = have[i];
    const w = want[i];
    if (!h && !w) continue;
    if (!h || !w) throw new CriuError('ENOTSUP', `the vDSO layout differs from the dumped one (${SPECIAL[i]} ${h ? 'only here' : 'only in the image'}); restore on the same kernel`);
    if (h.end - h.start !== addr(w.end) - addr(w.start)) {
      throw new CriuError('ENOTSUP', `${SPECIAL[i]} is ${h.end - h.start} bytes here but ${addr(w.end) - addr(w.start)} in the image; restore on the same kernel`);
    }
    const d = addr(w.start) - h.start;
    if (delta === undefined) delta = d;
    else if (d !== delta) throw new CriuError('ENOTSUP', 'the vDSO pages were not contiguous in the image; cannot move them as one');
  }
  if (!delta) return;
  const present = have.filter((h): h is MapEntry => !!h);
  const lo = Math.min(...present.map((h) => h.start));
  const hi = Math.max(...present.map((h) => h.end));
  const move = (by: number) => {
    for (const h of present) {
      remote.call(SYS.mremap, `mremap(${h.name})`, h.start, h.end - h.start, h.end - h.start, MREMAP.MAYMOVE | MREMAP.FIXED, h.start + by);
      h.start += by;
      h.end += by;
    }
  };
  if (overlaps(lo, hi, lo + delta, hi + delta)) {
    const tmp = findFree(hi - lo, [...taken, [lo + delta, hi + delta]]);
    move(tmp - lo);
    move(lo + delta - tmp);
  } else {
    move(delta);
  }
}
