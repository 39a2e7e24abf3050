// A logger passed in every context (no globals). Levels follow CRIU's -v: 0 errors only,
// 1 warnings, 2 info (default log-file level), 3 debug, 4 everything plus stack traces.
import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs';

export type Level = 0 | 1 | 2 | 3 | 4;

export interface Logger {
  readonly verbosity: Level;
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** Close the log file, if any. */
  close(): void;
  /** The log file's fd (-1: none), for helper processes that write to the same log. */
  readonly fd: number;
}

export interface LoggerOptions {
  /** What reaches stderr (default 1: errors and warnings). */
  verbosity?: Level;
  /** Also write every message up to `fileVerbosity` to this file. */
  file?: string;
  fileVerbosity?: Level;
  /** Where stderr output goes (tests capture it). */
  stderr?: (line: string) => void;
  /** Prefix for stderr lines. */
  name?: string;
}

export function createLogger(o: LoggerOptions = {}): Logger {
  const verbosity = o.verbosity ?? 1;
  const fileLevel = o.fileVerbosity ?? Math.max(verbosity, 2);
  const out = o.stderr ?? ((l: string) => process.stderr.write(l + '\n'));
  const fd = o.file ? openSync(o.file, 'a', 0o600) : -1;
  const start = process.hrtime.bigint();
  const emit = (level: Level, tag: string, msg: string) => {
    if (level <= verbosity) out(`${o.name ? o.name + ': ' : ''}${tag}${msg}`);
    if (fd >= 0 && level <= fileLevel) {
      const t = (Number(process.hrtime.bigint() - start) / 1e9).toFixed(6);
      writeSync(fd, `(${t}) ${tag}${msg}\n`);
    }
  };
  return {
    verbosity,
    fd,
    error: (m) => emit(0, 'Error: ', m),
    warn: (m) => emit(1, 'Warn: ', m),
    info: (m) => emit(2, '', m),
    debug: (m) => emit(3, '', m),
    close: () => {
      if (fd >= 0) closeSync(fd);
    },
  };
}

/** A logger that drops everything (library calls without a logger). */
export const silentLogger: Logger = {
  verbosity: 0,
  fd: -1,
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  close: () => {},
};

export function appendLine(file: string, line: string): void {
  appendFileSync(file, line + '\n');
}
