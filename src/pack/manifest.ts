// MANIFEST.json, the first entry of an archive: the chain it holds and every file with its
// size and sha256. unpack and the in-place reader trust nothing of an archive that this file
// does not vouch for; the manifest itself is checked for shape and for the layout's rules.
//
//   { "format": "criu-ts-archive", "version": 1, "createdAt": ..., "toolVersion": ...,
//     "rootPid": 42,
//     "sets": [ { "folder": ".", "id": ..., "kind": "dump", "createdAt": ... },        newest
//               { "folder": "parents/1", "id": ..., "kind": "pre-dump", ... } ],      first
//     "files": [ { "name": "parents/1/pages-42.zst", "sizeBytes": 123, "sha256": "..." }, ... ],
//     "totalBytes": 4567 }
//
// Files are listed in archive order: the oldest set first, the root set last, and inside
// each set inventory.json last, so that an unpack cut short never holds a newer set's
// inventory before everything it needs (as dump writes the inventory last).
import { kindOf } from '../images/registry.js';
import { arr, literal, obj, str, uint, SchemaError, type Check, type Infer } from '../images/schema.js';
import { ArchiveError } from './errors.js';
import { MAX_SETS, MANIFEST, setFolder, splitEntry } from './layout.js';

export const ARCHIVE_FORMAT = 'criu-ts-archive';
export const ARCHIVE_VERSION = 1;
/** A manifest is small (a line per file); a huge one is not ours. */
export const MAX_MANIFEST_BYTES = 16 << 20;

const sha256: Check<string> = (v, p) => {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw new SchemaError(p, 'expected a sha256 (64 lowercase hex digits)');
  return v;
};

export const manifestSchema = obj({
  format: literal(ARCHIVE_FORMAT),
  version: literal(ARCHIVE_VERSION),
  createdAt: str,
  toolVersion: str,
  rootPid: uint,
  /** The chain, newest first: sets[0] is the set that was packed. */
  sets: arr(obj({ folder: str, id: str, kind: literal('dump', 'pre-dump'), createdAt: str })),
  files: arr(obj({ name: str, sizeBytes: uint, sha256 })),
  totalBytes: uint,
});

export type Manifest = Infer<typeof manifestSchema>;
export type ManifestFile = Manifest['files'][number];

export const encodeManifest = (m: Manifest): Buffer => Buffer.from(JSON.stringify(m, null, 1) + '\n');

/** A file name an archive may carry: one of the image kinds, never the archive's own structure. */
function packable(file: string): boolean {
  const k = kindOf(file);
  return k !== undefined && !k.directory && file !== MANIFEST;
}

/** Parses and checks a manifest; anything wrong is an ArchiveError naming the archive and the field. */
export function parseManifest(buf: Buffer, archive: string): Manifest {
  const bad = (problem: string): never => {
    throw new ArchiveError(archive, MANIFEST, problem);
  };
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    return bad(`not valid JSON (${(e as Error).message})`);
  }
  const head = (typeof value === 'object' && value !== null ? value : {}) as { format?: unknown; version?: unknown };
  if (head.format !== ARCHIVE_FORMAT) bad('not a criu-ts archive manifest (format field missing or foreign)');
  if (typeof head.version === 'number' && head.version > ARCHIVE_VERSION) {
    bad(`archive format version ${head.version} is newer than this tool understands (${ARCHIVE_VERSION}); upgrade criu-ts`);
  }
  let m: Manifest;
  try {
    m = manifestSchema(value, '');
  } catch (e) {
    return bad((e as Error).message);
  }
  if (m.sets.length === 0 || m.sets.length > MAX_SETS) bad(`sets: ${m.sets.length} sets (1 to ${MAX_SETS} expected)`);
  m.sets.forEach((s, i) => {
    if (s.folder !== setFolder(i)) bad(`sets[${i}].folder: "${s.folder}", the layout puts set ${i} in "${setFolder(i)}"`);
  });
  const names = new Set<string>();
  let total = 0;
  const withInventory = new Set<number>();
  m.files.forEach((f, i) => {
    const at = splitEntry(f.name);
    if (!at || at.set >= m.sets.length || !packable(at.file)) bad(`files[${i}].name: "${f.name}" is not a file of this layout`);
    if (names.has(f.name)) bad(`files[${i}].name: "${f.name}" is listed twice`);
    names.add(f.name);
    if (at!.file === 'inventory.json') withInventory.add(at!.set);
    total += f.sizeBytes;
  });
  m.sets.forEach((s, i) => {
    if (!withInventory.has(i)) bad(`set ${i} (${s.folder}) has no inventory.json in the file list`);
  });
  if (total !== m.totalBytes) bad(`totalBytes: ${m.totalBytes}, the files add up to ${total}`);
  return m;
}
