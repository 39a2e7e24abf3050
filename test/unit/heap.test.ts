// collectGarbage really collects: an object nothing refers to any more is gone after it.
import { describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/dump/heap.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('collectGarbage', () => {
  it('runs a full collection, without --expose-gc', async () => {
    let obj: object | undefined = { big: new Array(1000).fill(7) };
    const ref = new WeakRef(obj);
    obj = undefined;
    await tick(); // a WeakRef's target is kept alive until the end of the job that made it
    expect(collectGarbage()).toBe(true);
    await tick();
    expect(ref.deref()).toBeUndefined();
  });
});
