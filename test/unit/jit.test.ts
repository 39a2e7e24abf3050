// pauseOptimizer: no TurboFan compile starts while paused; back on once the last pause ends.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { pauseOptimizer } from '../../src/dump/jit.js';

setFlagsFromString('--allow-natives-syntax');
// %GetOptimizationStatus's bit for code made by TurboFan (V8 11's OptimizationStatus::kTurboFanned).
const TURBOFANNED = 1 << 6;
const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;

/** A fresh function made hot: true once TurboFan has compiled it (within a time limit). */
async function getsOptimized(ms: number): Promise<boolean> {
  const f = new Function('a', 'b', 'let s = 0; for (let i = 0; i < 50; i++) s += (a * i) ^ b; return s;') as (a: number, b: number) => number;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (let i = 0; i < 20000; i++) f(i, 7);
    if (status(f) & TURBOFANNED) return true;
    await new Promise((r) => setTimeout(r, 5)); // concurrent compiles finish on the main thread's turn
  }
  return false;
}

describe('pauseOptimizer', () => {
  it('keeps hot code out of TurboFan until the last of nested pauses is resumed', async () => {
    expect(await getsOptimized(3000)).toBe(true); // the check can pass at all
    const resumeA = pauseOptimizer();
    const resumeB = pauseOptimizer();
    expect(await getsOptimized(600)).toBe(false);
    resumeB();
    resumeB(); // once only: A's pause still holds
    expect(await getsOptimized(600)).toBe(false);
    resumeA();
    expect(await getsOptimized(3000)).toBe(true);
  });
});
