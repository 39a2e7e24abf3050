// struct user_regs_struct (x86_64) as named 64-bit fields over the raw Buffer the addon uses.

export const REG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type RegName = (typeof REG_NAMES)[number];
export const USER_REGS_SIZE = REG_NAMES.length * 8;

const offset = Object.fromEntries(REG_NAMES.map((n, i) => [n, i * 8])) as Record<RegName, number>;

export function getReg(regs: Buffer, name: RegName): bigint {
  return regs.readBigUInt64LE(offset[name]);
}

/** Signed view, for rax after a syscall (-errno) and orig_rax (-1). */
export function getRegSigned(regs: Buffer, name: RegName): bigint {
  return regs.readBigInt64LE(offset[name]);
}

export function setReg(regs: Buffer, name: RegName, value: bigint | number): void {
  regs.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)), offset[name]);
}

/** Registers as a plain object of hex strings: readable in core images and diffs. */
export function regsToJson(regs: Buffer): Record<RegName, string> {
  const out = {} as Record<RegName, string>;
  for (const n of REG_NAMES) out[n] = '0x' + getReg(regs, n).toString(16);
  return out;
}

export function regsFromJson(json: Record<string, string>): Buffer {
  const buf = Buffer.alloc(USER_REGS_SIZE);
  for (const n of REG_NAMES) {
    const v = json[n];
    if (typeof v !== 'string' || !/^0x[0-9a-f]{1,16}$/i.test(v)) throw new Error(`register ${n}: expected a hex string`);
    setReg(buf, n, BigInt(v));
  }
  return buf;
}
