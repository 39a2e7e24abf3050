// mm-PID.json: the address space: every VMA with what it maps, the mm fields that
// PR_SET_MM_MAP restores, the auxiliary vector and the executable.
import { readJson, writeJson, type DeferredSyncs } from './io.js';
import type { SetLocation } from './source.js';
import { arr, bool, hex, literal, nullable, num, obj, opt, str, uint, type Infer } from './schema.js';

export const mmFile = (pid: number) => `mm-${pid}.json`;

export const vmaSchema = obj({
  start: hex,
  end: hex,
  /** PROT_* bits. */
  prot: uint,
  shared: bool,
  /**
   * anon: private or shared anonymous memory (heap and stack included);
   * file: a mapping of `path` at `offset`; file-deleted: of a file that is gone (saved whole);
   * vdso/vvar/vvar_vclock: the kernel's, moved into place at restore; vsyscall: fixed, skipped.
   */
  kind: literal('anon', 'file', 'file-deleted', 'vdso', 'vvar', 'vvar_vclock', 'vsyscall'),
  name: str,
  path: opt(str),
  offset: opt(uint),
  /** The file as it was, to refuse a restore onto a different one. */
  fileSize: opt(uint),
  fileMtimeMs: opt(num),
  growsDown: bool,
  /**
   * Shared anonymous memory (shmem): the object's id (dev:inode), the process whose image
   * holds its pages, and its size. Processes that share it map one object again.
   */
  shm: opt(obj({ id: str, owner: uint, sizeBytes: uint })),
  /** smaps VmFlags (for madvise state and show). */
  vmFlags: arr(str),
});

export const mmSchema = obj({
  pid: uint,
  vmas: arr(vmaSchema),
  mmFields: obj({
    startCode: hex,
    endCode: hex,
    startData: hex,
    endData: hex,
    startBrk: hex,
    brk: hex,
    startStack: hex,
    argStart: hex,
    argEnd: hex,
    envStart: hex,
    envEnd: hex,
  }),
  auxv: arr(hex),
  exe: nullable(obj({ path: str, size: opt(uint), mtimeMs: opt(num) })),
});

export type Mm = Infer<typeof mmSchema>;
export type Vma = Infer<typeof vmaSchema>;

export const writeMm = (dir: string, m: Mm, syncs?: DeferredSyncs) => writeJson(dir, mmFile(m.pid), m, syncs);
export const readMm = (from: SetLocation, pid: number): Mm => readJson(from, mmFile(pid), mmSchema);

export const addr = (h: string): number => Number(BigInt(h));
export const toHex = (n: number | bigint): string => '0x' + BigInt.asUintN(64, BigInt(n)).toString(16);
