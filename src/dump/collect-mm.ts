// The address space (mm-PID.json): VMAs from smaps, mm fields from stat plus an injected
// brk(0) (the current brk is not in /proc), auxv and the executable.
import { statSync, readlinkSync } from 'node:fs';
import { readAuxv, readStat, type MapEntry } from '../kernel/procfs.js';
import type { Remote } from '../kernel/remote.js';
import { SYS } from '../kernel/syscalls.js';
import { CriuError } from '../errors.js';
import { toHex, type Mm, type Vma } from '../images/mm.js';

const DELETED = ' (deleted)';

function protOf(perms: string): number {
  return (perms[0] === 'r' ? 1 : 0) | (perms[1] === 'w' ? 2 : 0) | (perms[2] === 'x' ? 4 : 0);
}

/** Shared anonymous memory shows up as a deleted /dev/zero, SYSV or anon_shmem mapping. */
function isShmemAnon(name: string): boolean {
  return name.startsWith('/dev/zero') || name.startsWith('/SYSV') || name.startsWith('[anon_shmem:');
}

/**
 * A shared mapping of a memfd is shared memory too: one object, saved once, mapped again by
 * every process that had it. (If the process also holds the memfd as an fd, that fd comes
 * back as a memfd of its own: same content, no longer the same object as the mapping.)
 */
const isMemfd = (name: string) => name.startsWith('/memfd:') && name.endsWith(DELETED);

export function classifyVma(pid: number, m: MapEntry): Vma {
  const shared = m.perms[3] === 's';
  const base = {
    start: toHex(m.start),
    end: toHex(m.end),
    prot: protOf(m.perms),
    shared,
    name: m.name,
    growsDown: (m.vmFlags ?? []).includes('gd'),
    vmFlags: m.vmFlags ?? [],
  };
  const where = `pid ${pid} VMA ${m.start.toString(16)}-${m.end.toString(16)} ${m.name}`;
  switch (m.name) {
    case '[vdso]':
      return { ...base, kind: 'vdso' };
    case '[vvar]':
      return { ...base, kind: 'vvar' };
    case '[vvar_vclock]':
      return { ...base, kind: 'vvar_vclock' };
    case '[vsyscall]':
      return { ...base, kind: 'vsyscall' };
  }
  if (shared && (isShmemAnon(m.name) || isMemfd(m.name))) {
    let sizeBytes = m.end - m.start;
    try {
      sizeBytes = statSync(`/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`).size;
    } catch {
      /* keep the VMA's length */
    }
    return { ...base, kind: 'anon', offset: m.offset, shm: { id: `${m.dev}:${m.inode}`, owner: pid, sizeBytes } };
  }
  if (m.name === '' || m.name === '[heap]' || m.name === '[stack]' || m.name.startsWith('[anon:') || isShmemAnon(m.name)) {
    return { ...base, kind: 'anon' };
  }
  if (m.name.startsWith('[')) throw new CriuError('ENOTSUP', `${where}: this kind of mapping is not supported`);
  if (m.name.endsWith(DELETED)) {
    if (shared) throw new CriuError('ENOTSUP', `${where}: shared mapping of a deleted file is not supported yet`);
    // The file is gone: its content is saved whole from memory and restored as anonymous.
    return { ...base, kind: 'file-deleted', path: m.name.slice(0, -DELETED.length), offset: m.offset };
  }
  const st = statSync(m.name);
  return { ...base, kind: 'file', path: m.name, offset: m.offset, fileSize: st.size, fileMtimeMs: st.mtimeMs };
}

/** The mm of a frozen process whose VMAs (classifyVma) were read before. */
export function collectMm(pid: number, vmas: Vma[], remote: Remote): Mm {
  const stat = readStat(pid);
  const f = (i: number) => toHex(BigInt(stat[i] ?? '0'));
  const brk = remote.call(SYS.brk, 'brk(0)', 0);
  let exe: Mm['exe'] = null;
  try {
    const path = readlinkSync(`/proc/${pid}/exe`);
    const st = statSync(`/proc/${pid}/exe`);
    exe = { path, size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    exe = null;
  }
  return {
    pid,
    vmas,
    mmFields: {
      startCode: f(26),
      endCode: f(27),
      startStack: f(28),
      startData: f(45),
      endData: f(46),
      startBrk: f(47),
      brk: toHex(brk),
      argStart: f(48),
      argEnd: f(49),
      envStart: f(50),
      envEnd: f(51),
    },
    auxv: readAuxv(pid).map(toHex),
    exe,
  };
}
