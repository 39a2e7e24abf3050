// Every kind of file an image set may hold, by name. Used to validate a set as a whole
// (show, pack, unpack): a file that matches no kind is foreign.

export interface ImageKind {
  name: string;
  pattern: RegExp;
  description: string;
  /** A directory, not a file (the passes of `dump --iterative` live inside the final set). */
  directory?: boolean;
}

export const IMAGE_KINDS: ImageKind[] = [
  { name: 'inventory', pattern: /^inventory\.json$/, description: 'what the set is, version, parent, statistics' },
  { name: 'pstree', pattern: /^pstree\.json$/, description: 'processes, threads, session and group ids' },
  { name: 'core', pattern: /^core-\d+\.json$/, description: "a thread's registers and signal state" },
  { name: 'mm', pattern: /^mm-\d+\.json$/, description: 'VMAs, mm fields, auxv, exe' },
  { name: 'files', pattern: /^files-\d+\.json$/, description: 'the fd table' },
  { name: 'timers', pattern: /^timers-\d+\.json$/, description: 'interval and POSIX timers' },
  { name: 'pagemap', pattern: /^pagemap-\d+\.bin$/, description: 'page index: ranges and frames' },
  { name: 'pages', pattern: /^pages-\d+\.zst$/, description: 'page data, independent zstd frames' },
  { name: 'ghost', pattern: /^ghost-\d+-\d+\.zst$/, description: 'content of a deleted-but-open file or of a memfd' },
  { name: 'log', pattern: /^(dump|pre-dump|restore|lazy-pages)\.log$/, description: 'a log file' },
  { name: 'pass', pattern: /^pre-\d+$/, description: 'a pre-dump pass of `dump --iterative` (a set of its own, in the parent chain)', directory: true },
  { name: 'catch-up', pattern: /^catch-up(-\d+)?$/, description: "a final dump's catch-up pass before its freeze (a set of its own, its parent; see src/dump/catch-up.ts)", directory: true },
  { name: 'manifest', pattern: /^MANIFEST\.json$/, description: 'an unpacked archive: its files with sizes and sha256 (see src/pack)' },
  { name: 'parents', pattern: /^parents$/, description: 'an unpacked archive: the parent sets, parents/1, parents/2 ... (see src/pack)', directory: true },
];

export function kindOf(file: string): ImageKind | undefined {
  return IMAGE_KINDS.find((k) => k.pattern.test(file));
}
