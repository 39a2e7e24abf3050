// The rules every archive entry meets before a byte of it is used, the same for unpack (a
// stream) and for an archive read in place: a safe relative name, a regular file (or a
// directory of the layout), listed in the manifest with this size, seen once. Contents are
// checked against the manifest's sha256 by whoever reads them.
import { ArchiveError } from './errors.js';
import { MANIFEST, MAX_SETS, PARENTS, setFolder, unsafePath } from './layout.js';
import { MAX_MANIFEST_BYTES, type Manifest, type ManifestFile } from './manifest.js';

export interface EntryHeader {
  name: string;
  /** tar-stream's type names: 'file', 'directory', 'symlink', 'link', 'character-device' ... */
  type: string;
  size: number;
  linkname?: string | null;
}

export class EntryVerifier {
  private manifest: Manifest | undefined;
  private readonly files = new Map<string, ManifestFile>();
  private readonly dirs = new Set<string>();
  private readonly seen = new Set<string>();

  constructor(readonly archive: string) {}

  private fail(entry: string | undefined, problem: string): never {
    throw new ArchiveError(this.archive, entry, problem);
  }

  /** Checks the header of the first entry, which must be the manifest. */
  admitManifest(h: EntryHeader): void {
    this.checkShape(h);
    if (h.name !== MANIFEST || h.type !== 'file') {
      this.fail(h.name, `is the first entry; an archive made by criu-ts pack starts with ${MANIFEST}`);
    }
    if (h.size > MAX_MANIFEST_BYTES) this.fail(h.name, `is ${h.size} bytes, more than a manifest can be (${MAX_MANIFEST_BYTES})`);
    this.seen.add(h.name);
  }

  setManifest(m: Manifest): void {
    this.manifest = m;
    for (const f of m.files) this.files.set(f.name, f);
    if (m.sets.length > 1) this.dirs.add(PARENTS);
    for (let i = 1; i < m.sets.length && i < MAX_SETS; i++) this.dirs.add(setFolder(i));
  }

  /** Checks a later entry's header: the manifest's record of the file, or null for a directory. */
  admit(h: EntryHeader): ManifestFile | null {
    if (!this.manifest) throw new Error('EntryVerifier.admit before setManifest');
    this.checkShape(h);
    const name = h.type === 'directory' ? h.name.replace(/\/$/, '') : h.name;
    if (this.seen.has(name)) this.fail(name, 'appears twice in the archive (refused)');
    this.seen.add(name);
    if (h.type === 'directory') {
      if (!this.dirs.has(name)) this.fail(name, 'is a directory that is not in the manifest');
      return null;
    }
    const f = this.files.get(name);
    if (!f) this.fail(name, 'is not in the manifest');
    if (h.size !== f.sizeBytes) this.fail(name, `is ${h.size} bytes, the manifest says ${f.sizeBytes}`);
    return f;
  }

  /** After the last entry: every file the manifest lists was there. */
  finish(): void {
    if (!this.manifest) this.fail(undefined, `holds no entries: not an archive made by criu-ts pack (no ${MANIFEST})`);
    const missing = this.manifest.files.filter((f) => !this.seen.has(f.name)).map((f) => f.name);
    if (missing.length) {
      const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
      this.fail(missing[0], `is in the manifest but not in the archive${more}: truncated, or not the whole archive`);
    }
  }

  /** A name that stays inside the target, and an entry that is a file or a directory. */
  private checkShape(h: EntryHeader): void {
    const why = unsafePath(h.type === 'directory' ? h.name.replace(/\/$/, '') : h.name);
    if (why) this.fail(h.name, why);
    if (h.type === 'file' || h.type === 'directory') return;
    if (h.type === 'symlink') this.fail(h.name, `is a symbolic link to ${JSON.stringify(h.linkname ?? '')} (refused)`);
    if (h.type === 'link') this.fail(h.name, `is a hard link to ${JSON.stringify(h.linkname ?? '')} (refused)`);
    if (/^(pax|gnu)-/.test(h.type)) this.fail(h.name, `uses a ${h.type} extended header (refused: criu-ts pack never writes one)`);
    this.fail(h.name, `is a ${h.type} (refused: an archive holds regular files and directories only)`);
  }
}
