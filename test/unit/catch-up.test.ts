// When a final dump makes another catch-up pass, and which directory the next one takes.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { anotherCatchUp, CATCH_UP_MIN_BYTES, catchUpDir, MAX_CATCH_UPS } from '../../src/dump/catch-up.js';
import { removeDir, tempDir } from '../helpers/cli.js';

const MiB = 1 << 20;
let dir: string | undefined;
afterEach(() => {
  if (dir) removeDir(dir);
  dir = undefined;
});

describe('catch-up passes', () => {
  it('go on while enough is written and each leaves at most three quarters, up to the limit', () => {
    expect(anotherCatchUp(1, 400 * MiB, 100 * MiB)).toBe(true);
    expect(anotherCatchUp(1, 400 * MiB, 300 * MiB)).toBe(true); // exactly three quarters
    expect(anotherCatchUp(1, 400 * MiB, 301 * MiB)).toBe(false); // not converging
    expect(anotherCatchUp(1, 400 * MiB, CATCH_UP_MIN_BYTES - 1)).toBe(false); // too little to pay for a scan
    expect(anotherCatchUp(MAX_CATCH_UPS - 1, 400 * MiB, 100 * MiB)).toBe(true);
    expect(anotherCatchUp(MAX_CATCH_UPS, 400 * MiB, 100 * MiB)).toBe(false);
  });

  it('take the first free name: catch-up, then catch-up-2, -3', () => {
    dir = tempDir();
    expect(catchUpDir(dir)).toBe('catch-up');
    mkdirSync(join(dir, 'catch-up'));
    expect(catchUpDir(dir)).toBe('catch-up-2');
    mkdirSync(join(dir, 'catch-up-2'));
    expect(catchUpDir(dir)).toBe('catch-up-3');
  });
});
