// Progress of long work (page copy, pack, unpack, restore), reported through a callback that
// the caller owns: the CLI draws a line on a terminal, a program does what it likes.

export interface Progress {
  /** What is moving: 'pages' (dump, pre-dump), 'restore', 'checksum' and 'pack', 'unpack'. */
  phase: string;
  bytesDone: number;
  /** When known up front. */
  bytesTotal?: number;
}

export type ProgressFn = (p: Progress) => void;
