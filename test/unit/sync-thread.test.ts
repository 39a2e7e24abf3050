// SyncThread (fdatasync off the libuv pool), and a final dump's writer flushing what it has
// written over its reservation while it goes on writing.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CompressPool } from '../../src/images/compress-pool.js';
import { PAGE } from '../../src/images/pagemap.js';
import { PagesReader, PagesWriter } from '../../src/images/pages.js';
import { SyncThread } from '../../src/images/sync-thread.js';
import { removeDir, tempDir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

describe('SyncThread', () => {
  it('syncs an open file, fails a bad fd with its errno name, and settles what is pending when closed', async () => {
    const dir = tempDir('sync-thread');
    dirs.push(dir);
    const t = await SyncThread.start();
    const fd = openSync(join(dir, 'f'), 'w');
    try {
      writeSync(fd, Buffer.alloc(1 << 20, 7));
      await expect(t.fdatasync(fd)).resolves.toBeUndefined();
      await expect(t.fdatasync(999_999)).rejects.toMatchObject({ code: 'EBADF' });
      const pending = t.fdatasync(fd);
      pending.catch(() => {});
      await t.close();
      await expect(Promise.race([pending.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(() => r('hangs'), 2000))])).resolves.toBe('settled');
    } finally {
      closeSync(fd);
    }
  });
});

describe('PagesWriter over a reservation, with a SyncThread', () => {
  it('flushes while it writes (one flush at a time, at most one per 8 MiB), and closes its fd only after the last', async () => {
    const dir = tempDir('early-sync');
    dirs.push(dir);
    const real = await SyncThread.start();
    const calls: number[] = [];
    let settled = 0;
    // Ours, counting: the thread itself is real.
    const counting = {
      fdatasync: (fd: number) => {
        calls.push(fd);
        return real.fdatasync(fd).finally(() => settled++);
      },
    } as unknown as SyncThread;
    const pool = new CompressPool(0);
    const data = randomBytes(40 << 20);
    try {
      const w = new PagesWriter(dir, 77, pool);
      await w.reserve(48 << 20, counting); // its own flush, then the early ones
      for (let off = 0; off < data.length; off += 4 << 20) {
        await w.addData(0x100000 + off, data.subarray(off, off + (4 << 20)));
        await new Promise((r) => setTimeout(r, 5)); // as a copy reading pages would
      }
      await w.writeFrames();
      await w.complete();
      expect(calls.length).toBeGreaterThanOrEqual(2);
      expect(calls.length).toBeLessThanOrEqual(6);
      expect(settled).toBe(calls.length);
    } finally {
      await pool.close();
      await real.close();
    }
    const r = PagesReader.open(dir, 77);
    try {
      const out = Buffer.alloc(data.length);
      r.readStream(0, data.length, out, 0);
      expect(out.equals(data)).toBe(true);
      expect(r.index.rawBytes).toBe(data.length);
      expect(r.index.ranges).toEqual([{ start: 0x100000, nrPages: data.length / PAGE, kind: r.index.ranges[0]!.kind, streamOff: 0 }]);
    } finally {
      r.close();
    }
  });
});
