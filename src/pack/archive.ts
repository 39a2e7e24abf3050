// An archive read in place: its headers indexed (no data read), its manifest checked against
// every entry, and each set of the chain offered as an ImageSource whose files are ranges of
// the archive. restore, show (and later lazy restore) read it as they read a directory.
//
// What is verified when: names, types, sizes and completeness at open; a whole file (JSON,
// page index, ghost) against its sha256 each time it is read; page data frame by frame by the
// frame checksums that the (verified) page index holds, so a page read needs no full pass.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { posix } from 'node:path';
import { ImageError } from '../images/errors.js';
import { preadExact } from '../images/io.js';
import type { ImageFile, ImageSource } from '../images/source.js';
import { ArchiveError } from './errors.js';
import { entryName, MANIFEST, PARENTS, parentLink, setFolder } from './layout.js';
import { parseManifest, type Manifest, type ManifestFile } from './manifest.js';
import { indexTar } from './tar-index.js';
import { EntryVerifier } from './verify.js';

interface Located {
  dataOffset: number;
  file: ManifestFile;
}

export class Archive {
  private constructor(
    readonly path: string,
    private fd: number,
    readonly manifest: Manifest,
    private readonly entries: Map<string, Located>,
  ) {}

  static open(path: string): Archive {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new ArchiveError(path, undefined, `cannot open: ${(e as Error).message}`, { cause: e });
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new ArchiveError(path, undefined, 'is not a regular file: only a file is read in place (unpack reads a stream)');
      const verifier = new EntryVerifier(path);
      const entries = new Map<string, Located>();
      let manifest: Manifest | undefined;
      for (const e of indexTar(fd, st.size, path)) {
        if (!manifest) {
          verifier.admitManifest(e);
          const buf = Buffer.alloc(e.size);
          preadExact(fd, `${path}:${MANIFEST}`, buf, 0, e.size, e.dataOffset);
          manifest = parseManifest(buf, path);
          verifier.setManifest(manifest);
          continue;
        }
        const f = verifier.admit(e);
        if (f) entries.set(f.name, { dataOffset: e.dataOffset, file: f });
      }
      verifier.finish();
      return new Archive(path, fd, manifest!, entries);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** The set that was packed; its parents follow from its inventory, as in a directory. */
  root(): ImageSource {
    return new ArchiveSource(this, 0);
  }

  /** @internal for ArchiveSource */
  locate(name: string): Located | undefined {
    return this.entries.get(name);
  }

  /** @internal for ArchiveSource */
  get fdForReading(): number {
    if (this.fd < 0) throw new ArchiveError(this.path, undefined, 'is closed');
    return this.fd;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Set i of an archive's chain; index -1 stands for a parent link that leads nowhere in it. */
class ArchiveSource implements ImageSource {
  readonly name: string;
  readonly key: string;
  private readonly folder: string;

  constructor(
    private readonly archive: Archive,
    private readonly index: number,
    folder = setFolder(index),
  ) {
    this.folder = folder;
    this.name = folder === '.' ? archive.path : `${archive.path}:${folder}`;
    this.key = `${archive.path}\0${folder}`;
  }

  exists(): boolean {
    return this.index >= 0;
  }

  path(file: string): string {
    return `${this.archive.path}:${entryName(this.folder, file)}`;
  }

  has(file: string): boolean {
    return this.index >= 0 && this.archive.locate(entryName(this.folder, file)) !== undefined;
  }

  list(): string[] {
    if (this.index < 0) return [];
    const prefix = this.folder === '.' ? '' : `${this.folder}/`;
    const names = this.archive.manifest.files
      .map((f) => f.name)
      .filter((n) => n.startsWith(prefix) && !n.slice(prefix.length).includes('/'))
      .map((n) => n.slice(prefix.length));
    if (this.index === 0) names.push(MANIFEST, ...(this.archive.manifest.sets.length > 1 ? [PARENTS] : []));
    return names.sort();
  }

  private locate(file: string): Located {
    const at = this.index >= 0 ? this.archive.locate(entryName(this.folder, file)) : undefined;
    if (!at) throw new ImageError(this.path(file), 'missing');
    return at;
  }

  readFile(file: string): Buffer {
    const at = this.locate(file);
    const buf = Buffer.alloc(at.file.sizeBytes);
    preadExact(this.archive.fdForReading, this.path(file), buf, 0, buf.length, at.dataOffset);
    const sha = createHash('sha256').update(buf).digest('hex');
    if (sha !== at.file.sha256) throw new ImageError(this.path(file), `damaged: its sha256 is ${sha}, the manifest says ${at.file.sha256}`);
    return buf;
  }

  open(file: string): ImageFile {
    const at = this.locate(file);
    const path = this.path(file);
    const size = at.file.sizeBytes;
    const archive = this.archive;
    return {
      path,
      size,
      pread(buf, off, len, pos) {
        if (pos + len > size) throw new ImageError(path, `truncated: wanted ${len} bytes at offset ${pos}, file ends at ${size}`);
        preadExact(archive.fdForReading, path, buf, off, len, at.dataOffset + pos);
      },
      close() {
        /* the archive owns the fd */
      },
    };
  }

  /** Only the link the layout prescribes leads anywhere: nothing outside the archive, no shortcuts. */
  parent(rel: string): ImageSource {
    const n = this.archive.manifest.sets.length;
    if (this.index >= 0 && rel === parentLink(this.index, n)) return new ArchiveSource(this.archive, this.index + 1);
    return new ArchiveSource(this.archive, -1, `${posix.join(this.folder, rel)} (not a set of this archive)`);
  }
}
