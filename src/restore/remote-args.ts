// Putting syscall arguments (strings, structs) into the stub's scratch memory.
import { CriuError } from '../errors.js';
import { writeRemote } from '../kernel/remote.js';
import type { Stub } from './stub.js';

/** Writes `data` at the start of scratch and returns its address. */
export function putBytes(stub: Stub, data: Buffer, offset = 0): number {
  if (offset + data.length > stub.scratchLen) throw new CriuError('E2BIG', `argument of ${data.length} bytes does not fit the scratch area`);
  writeRemote(stub.pid, stub.scratch + offset, data);
  return stub.scratch + offset;
}

export function putString(stub: Stub, s: string, offset = 0): number {
  return putBytes(stub, Buffer.from(s + '\0'), offset);
}

export function u64s(...values: Array<number | bigint>): Buffer {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), i * 8));
  return b;
}
