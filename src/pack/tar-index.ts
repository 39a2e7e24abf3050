// Reads a tar archive's headers in place, without its data: entry name -> data offset and
// size. This is what lets restore and show use an archive without unpacking it. Only the
// ustar forms that tar-stream (and GNU tar, for short names) write are understood; extended
// headers come back as their type, which the verifier refuses.
import { readSync } from 'node:fs';
import { ArchiveError } from './errors.js';
import type { EntryHeader } from './verify.js';

export const BLOCK = 512;

export interface IndexedEntry extends EntryHeader {
  /** Where the entry's data starts in the archive. */
  dataOffset: number;
}

const TYPES: Record<string, string> = {
  '0': 'file',
  '\0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
  x: 'pax-header',
  g: 'pax-global-header',
  L: 'gnu-long-path',
  K: 'gnu-long-link-path',
};

const cstr = (b: Buffer, from: number, len: number): string => {
  const end = b.indexOf(0, from);
  return b.toString('utf8', from, end < 0 || end > from + len ? from + len : end);
};

/** An octal field (NUL/space padded), or base-256 when its high bit is set (sizes of 8 GiB and more). */
function numeric(b: Buffer, from: number, len: number): number {
  if (b[from]! & 0x80) {
    let n = 0;
    for (let i = from + 1; i < from + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const text = b.toString('latin1', from, from + len).replace(/[\0 ]+$/, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return NaN;
  return parseInt(text, 8);
}

/** One 512-byte header; null for an end-of-archive (all zero) block. */
export function decodeHeader(b: Buffer, archive: string, at: number): EntryHeader | null {
  if (b.every((x) => x === 0)) return null;
  let sum = 8 * 0x20; // the checksum field itself counts as spaces
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += b[i]!;
  if (numeric(b, 148, 8) !== sum) throw new ArchiveError(archive, undefined, `header at offset ${at}: checksum mismatch (damaged, or not a tar archive)`);
  const magic = b.toString('latin1', 257, 263);
  const posix = magic === 'ustar\0';
  if (!posix && magic !== 'ustar ') throw new ArchiveError(archive, undefined, `header at offset ${at}: not a ustar header`);
  let name = cstr(b, 0, 100);
  if (posix && b[345]) name = `${cstr(b, 345, 155)}/${name}`;
  const flag = String.fromCharCode(b[156]!);
  let type = TYPES[flag] ?? `unknown type '${flag}'`;
  if (type === 'file' && name.endsWith('/')) type = 'directory';
  const size = numeric(b, 124, 12);
  if (!Number.isSafeInteger(size)) throw new ArchiveError(archive, name, `header at offset ${at}: bad size field`);
  const link = cstr(b, 157, 100);
  return { name, type, size, linkname: link === '' ? null : link };
}

/**
 * Every entry of the archive in fd (fileSize bytes), in order. An entry whose data runs past
 * the end of the file is an error (truncated); an archive that ends at an entry boundary
 * without the end-of-archive blocks is accepted (the manifest still says what must be there).
 */
export function indexTar(fd: number, fileSize: number, archive: string): IndexedEntry[] {
  const out: IndexedEntry[] = [];
  const block = Buffer.alloc(BLOCK);
  for (let pos = 0; pos < fileSize; ) {
    if (fileSize - pos < BLOCK) throw new ArchiveError(archive, out.at(-1)?.name, `truncated: the archive ends inside the header after this entry (offset ${pos})`);
    let got = 0;
    while (got < BLOCK) {
      const n = readSync(fd, block, got, BLOCK - got, pos + got);
      if (n === 0) throw new ArchiveError(archive, undefined, `truncated while reading the header at offset ${pos}`);
      got += n;
    }
    const h = decodeHeader(block, archive, pos);
    if (!h) break;
    const dataOffset = pos + BLOCK;
    if (dataOffset + h.size > fileSize) {
      throw new ArchiveError(archive, h.name, `truncated: its ${h.size} bytes of data run past the end of the archive (${fileSize} bytes)`);
    }
    out.push({ ...h, dataOffset });
    pos = dataOffset + Math.ceil(h.size / BLOCK) * BLOCK;
  }
  return out;
}
