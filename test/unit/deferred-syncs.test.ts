// DeferredSyncs: the small files of a dump's write stage synced together at its end.
import { fstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageError } from '../../src/images/errors.js';
import { DeferredSyncs, writeImageFile, writeJson } from '../../src/images/io.js';
import { native } from '../../src/kernel/native.js';
import { removeDir, tempDir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

const isOpen = (fd: number) => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

describe('DeferredSyncs', () => {
  it('keeps each file open until flush, which syncs and closes them all', async () => {
    const dir = tempDir('syncs');
    dirs.push(dir);
    const syncs = new DeferredSyncs();
    writeJson(dir, 'a.json', { a: 1 }, syncs);
    writeImageFile(dir, 'b.bin', Buffer.from('bee'), syncs);
    const fds = (syncs as unknown as { files: Array<{ fd: number }> }).files.map((f) => f.fd);
    expect(fds).toHaveLength(2);
    expect(fds.every(isOpen)).toBe(true);
    await syncs.flush();
    expect(fds.some(isOpen)).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8'))).toEqual({ a: 1 });
    expect(readFileSync(join(dir, 'b.bin'), 'utf8')).toBe('bee');
  });

  it('names the file whose sync failed, and still closes every fd', async () => {
    const dir = tempDir('syncs');
    dirs.push(dir);
    const syncs = new DeferredSyncs();
    writeJson(dir, 'ok.json', {}, syncs);
    const [r, w] = native.pipe2(0) as [number, number]; // fsync on a pipe fails (EINVAL)
    syncs.add(r, '/the/pipe');
    await expect(syncs.flush()).rejects.toThrow(ImageError);
    await expect(syncs.flush()).resolves.toBeUndefined(); // nothing left
    expect(isOpen(r)).toBe(false);
    const again = new DeferredSyncs();
    again.add(w, '/the/pipe');
    await expect(again.flush()).rejects.toThrow(/\/the\/pipe: cannot sync/);
  });

  it('close() closes what was never flushed', () => {
    const dir = tempDir('syncs');
    dirs.push(dir);
    const syncs = new DeferredSyncs();
    writeJson(dir, 'x.json', {}, syncs);
    const fd = (syncs as unknown as { files: Array<{ fd: number }> }).files[0]!.fd;
    syncs.close();
    expect(isOpen(fd)).toBe(false);
  });
});
