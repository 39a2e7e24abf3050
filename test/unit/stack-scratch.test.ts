// Where a dump borrows its scratch page: below the leader's stack pointer in [stack], clear
// of the red zone, or nowhere (a mapped page instead).
import { describe, expect, it } from 'vitest';
import type { MapEntry } from '../../src/kernel/procfs.js';
import { stackScratchAt } from '../../src/kernel/remote.js';

const vma = (start: number, end: number, name: string, perms = 'rw-p'): MapEntry => ({ start, end, perms, offset: 0, dev: '00:00', inode: 0, name });
const STACK = vma(0x7ff000000000, 0x7ff000021000, '[stack]');
const maps = [vma(0x400000, 0x401000, '/bin/x', 'r-xp'), vma(0x7f0000000000, 0x7f0000100000, ''), STACK];

describe('stackScratchAt', () => {
  it('takes the page-aligned area below the stack pointer, a red zone and a page clear of it', () => {
    const sp = 0x7ff000020e58;
    const at = stackScratchAt(maps, sp, 4096)!;
    expect(at % 4096).toBe(0);
    expect(at + 4096).toBeLessThanOrEqual(sp - 128 - 4096);
    expect(at + 4096).toBeGreaterThan(sp - 128 - 3 * 4096); // no further down than needed
    expect(at).toBeGreaterThanOrEqual(STACK.start);
  });

  it('refuses a stack pointer too close to the bottom of [stack]', () => {
    expect(stackScratchAt(maps, STACK.start + 4096 + 128, 4096)).toBeUndefined();
    expect(stackScratchAt(maps, STACK.start + 3 * 4096, 4096)).toBe(STACK.start);
  });

  it('refuses a stack pointer outside [stack] (a stack of the program\'s own), or no stack at all', () => {
    expect(stackScratchAt(maps, 0x7f0000080000, 4096)).toBeUndefined();
    expect(stackScratchAt(maps, 0x1000, 4096)).toBeUndefined();
    expect(stackScratchAt([vma(STACK.start, STACK.end, '[stack]', 'r--p')], 0x7ff000020e58, 4096)).toBeUndefined();
  });
});
