// Files of an image set: created 0600 in a directory created 0700, never following a
// symlink, fsynced before anyone relies on them. Reads name the file in every error.
import { closeSync, constants, fstatSync, fsync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CriuError } from '../errors.js';
import { ImageError } from './errors.js';
import { SchemaError, type Check } from './schema.js';
import type { SetLocation } from './source.js';

// libuv opens every fd with O_CLOEXEC already.
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = constants;

/** Creates DIR (0700) or accepts an existing real directory that holds no image set. */
export function createImageDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new ImageError(dir, `cannot create: ${(e as Error).message}`, { cause: e });
    const st = lstatSync(dir);
    if (!st.isDirectory()) throw new ImageError(dir, 'exists and is not a directory (symlinks are not followed)');
  }
  if (exists(join(dir, 'inventory.json'))) {
    throw new ImageError(dir, 'already holds an image set (inventory.json); use an empty directory');
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Opens a new image file for writing: O_EXCL|O_NOFOLLOW, mode 0600. */
export function createImageFile(dir: string, name: string): number {
  const path = join(dir, name);
  try {
    return openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new ImageError(path, `cannot create: ${(e as Error).message}`, { cause: e });
  }
}

export function writeAll(fd: number, data: Uint8Array, position?: number): void {
  let off = 0;
  while (off < data.length) {
    off += writeSync(fd, data, off, data.length - off, position === undefined ? null : position + off);
  }
}

const writeAsync = promisify(write);

/** writeAll at `position` on the libuv pool: the copy into the page cache off the calling thread. */
export async function writeAllAsync(fd: number, data: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) off += (await writeAsync(fd, data, off, data.length - off, position + off)).bytesWritten;
}

/** fsync on the libuv pool. */
export const fsyncAsync = promisify(fsync);

/**
 * fsyncs put off until a set of files is written: then all at once, on the libuv pool. One
 * after another, each small file's fsync is a journal commit of its own, and while a final
 * dump's pages are still going to the disk each waits its turn behind them.
 */
export class DeferredSyncs {
  private files: Array<{ fd: number; path: string }> = [];

  add(fd: number, path: string): void {
    this.files.push({ fd, path });
  }

  /** Syncs and closes every file added; the first failure names its file. */
  async flush(): Promise<void> {
    const files = this.files;
    this.files = [];
    try {
      const done = await Promise.allSettled(files.map(({ fd }) => fsyncAsync(fd)));
      const i = done.findIndex((d) => d.status === 'rejected');
      if (i >= 0) throw new ImageError(files[i]!.path, `cannot sync: ${((done[i] as PromiseRejectedResult).reason as Error).message}`);
    } finally {
      for (const { fd } of files) closeSync(fd);
    }
  }

  /** Closes what was not flushed (a failed dump: its set is incomplete anyway). */
  close(): void {
    for (const { fd } of this.files) closeSync(fd);
    this.files = [];
  }
}

/** A failed write or sync of an image file, naming it (the system's error names only the call). */
export function writeError(path: string, e: unknown): CriuError {
  const code = (e as { code?: unknown }).code;
  return new CriuError(typeof code === 'string' ? code : 'EIO', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
}

/** Writes a new image file and fsyncs it, or leaves the fsync to `syncs`. */
export function writeImageFile(dir: string, name: string, data: Uint8Array | string, syncs?: DeferredSyncs): void {
  const fd = createImageFile(dir, name);
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (!syncs) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    throw writeError(join(dir, name), e);
  }
  if (syncs) syncs.add(fd, join(dir, name));
  else closeSync(fd);
}

export function writeJson(dir: string, name: string, value: unknown, syncs?: DeferredSyncs): void {
  writeImageFile(dir, name, JSON.stringify(value, null, 1) + '\n', syncs);
}

export function syncDir(dir: string): void {
  const fd = openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Opens an image file for reading (no symlinks); a missing file is an ImageError. */
export function openImageFile(dir: string, name: string): number {
  const path = join(dir, name);
  try {
    return openSync(path, O_RDONLY | O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'missing' : code === 'ELOOP' ? 'is a symlink (refused)' : (e as Error).message;
    throw new ImageError(path, why, { cause: e });
  }
}

export function readImageFile(dir: string, name: string): Buffer {
  const fd = openImageFile(dir, name);
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** A JSON image file from a directory or any source, checked by `check`. */
export function readJson<T>(from: SetLocation, name: string, check: Check<T>): T {
  const path = typeof from === 'string' ? join(from, name) : from.path(name);
  const text = (typeof from === 'string' ? readImageFile(from, name) : from.readFile(name)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ImageError(path, `not valid JSON (${(e as Error).message})`, { cause: e });
  }
  try {
    return check(value, '');
  } catch (e) {
    if (e instanceof SchemaError) throw new ImageError(path, e.message, { cause: e });
    throw e;
  }
}

/** Reads exactly len bytes at pos, or throws naming the file as truncated. */
export function preadExact(fd: number, path: string, buf: Buffer, off: number, len: number, pos: number): void {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, off + done, len - done, pos + done);
    if (n === 0) throw new ImageError(path, `truncated: wanted ${len} bytes at offset ${pos}, file ends at ${pos + done}`);
    done += n;
  }
}
