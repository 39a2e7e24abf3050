// Where each set of a chain sits in an archive, and so in the directory unpack makes of it:
//
//   MANIFEST.json            the file list (see manifest.ts)
//   inventory.json ...       the set that was packed (the root): restore -D DIR, or --archive
//   parents/1/...            its parent              (root's inventory: parent "parents/1")
//   parents/2/...            the parent's parent     (parents/1's inventory: parent "../2")
//
// The archive and the unpacked directory have the same layout, so unpack writes every file
// exactly as the manifest describes it, and DIR is itself the set to restore.

export const MANIFEST = 'MANIFEST.json';
export const PARENTS = 'parents';
/** More sets than any chain should have: a bound for a manifest from an unknown source. */
export const MAX_SETS = 1000;

/** The folder of the chain's i-th set (0: the root, '.'). */
export const setFolder = (i: number): string => (i === 0 ? '.' : `${PARENTS}/${i}`);

/** The entry name of `file` in the folder. */
export const entryName = (folder: string, file: string): string => (folder === '.' ? file : `${folder}/${file}`);

/** What the i-th set's inventory says its parent is, in a chain of n sets. */
export function parentLink(i: number, n: number): string | null {
  if (i >= n - 1) return null;
  return i === 0 ? `${PARENTS}/1` : `../${i + 1}`;
}

const ENTRY = /^(?:parents\/([1-9]\d{0,5})\/)?([A-Za-z0-9][A-Za-z0-9._-]*)$/;

/** An entry name split into its set and file name, or undefined if it is not of this layout. */
export function splitEntry(name: string): { set: number; file: string } | undefined {
  const m = ENTRY.exec(name);
  if (!m) return undefined;
  return { set: m[1] === undefined ? 0 : Number(m[1]), file: m[2]! };
}

/** Why a path from an archive must not be written anywhere, or undefined if it stays inside. */
export function unsafePath(name: string): string | undefined {
  if (name === '') return 'has an empty name';
  if (name.includes('\0')) return 'has a NUL byte in its name';
  if (name.startsWith('/')) return 'is an absolute path (refused)';
  const parts = name.split('/');
  if (parts.includes('..')) return 'leads out of the target directory with ".." (refused)';
  if (parts.some((p) => p === '' || p === '.')) return 'is not a plain relative path (refused)';
  return undefined;
}
