// Where the files of an image set come from: a directory (what dump writes, and what unpack
// makes) or a folder of an archive read in place (src/pack/archive.ts). The reader of every
// image kind, the page reader and restore take a source, so none of them knows which it is.
import { existsSync, fstatSync, closeSync, lstatSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openImageFile, preadExact, readImageFile } from './io.js';

/** One file of a set, open for random access (page data is read a frame at a time). */
export interface ImageFile {
  /** Names the file in errors. */
  readonly path: string;
  readonly size: number;
  /** Reads exactly len bytes at pos into buf at off; a short read is an ImageError (truncated). */
  pread(buf: Buffer, off: number, len: number, pos: number): void;
  close(): void;
}

export interface ImageSource {
  /** The set as messages name it: its directory, or ARCHIVE[:FOLDER]. */
  readonly name: string;
  /** The set's identity, to catch a parent chain that loops. */
  readonly key: string;
  /** Whether the set's place exists at all (a directory that is not there does not). */
  exists(): boolean;
  /** A file of the set as messages name it. */
  path(file: string): string;
  has(file: string): boolean;
  /** Names in the set, sorted (directories included, as readdir gives them). */
  list(): string[];
  /** The whole file; missing, a symlink, or (archive) damaged is an ImageError naming it. */
  readFile(file: string): Buffer;
  open(file: string): ImageFile;
  /** The set at a relative link from this one (an inventory's `parent`). */
  parent(rel: string): ImageSource;
}

/** A directory path (today's common case) or any source. */
export type SetLocation = string | ImageSource;

export const sourceOf = (at: SetLocation): ImageSource => (typeof at === 'string' ? new DirSource(at) : at);

/** A set in a directory: files opened without following symlinks (see io.ts). */
export class DirSource implements ImageSource {
  readonly key: string;

  constructor(readonly name: string) {
    this.key = resolve(name);
  }

  exists(): boolean {
    return existsSync(this.name);
  }

  path(file: string): string {
    return join(this.name, file);
  }

  has(file: string): boolean {
    try {
      lstatSync(join(this.name, file));
      return true;
    } catch {
      return false;
    }
  }

  list(): string[] {
    return readdirSync(this.name).sort();
  }

  readFile(file: string): Buffer {
    return readImageFile(this.name, file);
  }

  open(file: string): ImageFile {
    const path = this.path(file);
    const fd = openImageFile(this.name, file);
    return {
      path,
      size: fstatSync(fd).size,
      pread: (buf, off, len, pos) => preadExact(fd, path, buf, off, len, pos),
      close: () => closeSync(fd),
    };
  }

  parent(rel: string): ImageSource {
    return new DirSource(resolve(this.name, rel));
  }
}

/**
 * A source that reports the bytes read from page files (pages-*.zst), through every parent
 * too: restore's progress, measured where the data comes from, so restore itself needs no hook.
 */
export function meteredSource(src: ImageSource, onRead: (bytes: number) => void): ImageSource {
  const pages = /^pages-\d+\.zst$/;
  return {
    name: src.name,
    key: src.key,
    exists: () => src.exists(),
    path: (f) => src.path(f),
    has: (f) => src.has(f),
    list: () => src.list(),
    readFile: (f) => src.readFile(f),
    open(f) {
      const file = src.open(f);
      if (!pages.test(f)) return file;
      return {
        path: file.path,
        size: file.size,
        pread(buf, off, len, pos) {
          file.pread(buf, off, len, pos);
          onRead(len);
        },
        close: () => file.close(),
      };
    },
    parent: (rel) => meteredSource(src.parent(rel), onRead),
  };
}
