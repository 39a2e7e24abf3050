import { native } from '../../src/kernel/native.js';
import { regsToJson } from '../../src/kernel/regs.js';

export function getRegs(pid: number): Record<string, string> {
  return regsToJson(native.ptraceGetRegs(pid));
}
