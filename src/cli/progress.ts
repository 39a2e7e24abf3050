// A one-line progress display on stderr for long work (pages, bytes, rate), redrawn in place
// at most ten times a second, and only when stderr is a terminal: a log or a pipe never sees it.
import type { Progress, ProgressFn } from '../progress.js';
import type { CliIo } from './command.js';

export interface ProgressLine {
  /** Undefined when stderr is not a terminal: the work then reports nothing. */
  onProgress: ProgressFn | undefined;
  /** Clears the line for good (before the command's own output, or once a restored process owns the terminal). */
  end(): void;
}

const REDRAW_MS = 100;
const mib = (n: number) => (n / 1048576).toFixed(1);

/** The text of the line: what moves, how much of how much, and how fast. */
export function formatProgress(p: Progress, elapsedMs: number): string {
  const pages = p.phase === 'pages' ? `${Math.floor(p.bytesDone / 4096)} pages, ` : '';
  const amount =
    p.bytesTotal !== undefined && p.bytesTotal > 0
      ? `${mib(p.bytesDone)} of ${mib(p.bytesTotal)} MiB (${Math.floor((100 * p.bytesDone) / p.bytesTotal)}%)`
      : `${mib(p.bytesDone)} MiB`;
  const rate = elapsedMs >= 1 ? `, ${((p.bytesDone / 1048576) * (1000 / elapsedMs)).toFixed(0)} MiB/s` : '';
  return `${p.phase}: ${pages}${amount}${rate}`;
}

export function progressLine(io: CliIo, now: () => number = () => performance.now()): ProgressLine {
  if (!io.stderrIsTTY) return { onProgress: undefined, end() {} };
  let phase = '';
  let started = 0;
  let drawn = -Infinity;
  let shown = false;
  let ended = false;
  return {
    onProgress(p) {
      if (ended) return;
      const t = now();
      if (p.phase !== phase) {
        phase = p.phase;
        started = t;
        drawn = -Infinity;
      }
      const last = p.bytesTotal !== undefined && p.bytesDone >= p.bytesTotal;
      if (t - drawn < REDRAW_MS && !last) return;
      drawn = t;
      io.stderr(`\r${formatProgress(p, t - started)}\x1b[K`);
      shown = true;
    },
    end() {
      if (shown) io.stderr('\r\x1b[K');
      shown = false;
      ended = true;
    },
  };
}
