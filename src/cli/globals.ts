// Options every command takes, CRIU style: -v/--verbosity and -o/--log-file.
//
// -v follows CRIU: `-v4` and `-v 4` set the level, `-v`, `-vv` ... count (`-vvv` is 3).
// Commander gives a bare -v the value `true` without calling the parser, and `-vv` the
// attached 'v', so a value made of v's is one more than its length. Levels are those of
// src/log.ts; the default is 1.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Level } from '../log.js';
import type { GlobalOptions } from './command.js';

export const DEFAULT_VERBOSITY: Level = 1;
const MAX_VERBOSITY: Level = 4;

export function parseVerbosity(value: string): Level {
  if (/^v*$/.test(value)) return Math.min(value.length + 1, MAX_VERBOSITY) as Level;
  if (/^[0-4]$/.test(value)) return Number(value) as Level;
  throw new InvalidArgumentError('expected a level from 0 to 4, or -v, -vv, -vvv, -vvvv');
}

export function addGlobalOptions(program: Command): void {
  program.addOption(
    new Option('-v, --verbosity [level]', 'log level: 0 errors, 1 warnings (default), 2 info, 3 debug, 4 everything with stack traces')
      .argParser(parseVerbosity),
  );
  program.option('-o, --log-file <file>', 'also write the log to this file (at least at level 2)');
}

/** The global options from commander's merged values. */
export function readGlobals(raw: Record<string, unknown>): GlobalOptions {
  const v = raw.verbosity;
  const verbosity = typeof v === 'number' ? (v as Level) : v === true ? parseVerbosity('') : DEFAULT_VERBOSITY;
  return typeof raw.logFile === 'string' ? { verbosity, logFile: raw.logFile } : { verbosity };
}

/**
 * A command that takes a global short flag for its own option (pack's `-o FILE`) gets it after
 * its name: `criu-ts pack -D x -o a.tar` is pack's --output, while `criu-ts -o log pack ...`
 * (before the name) and `--log-file` (anywhere) still name the log file. Commander alone would
 * give every -o to the global option.
 */
export function shadowGlobalFlags(argv: readonly string[], commands: ReadonlyArray<{ name: string; shadows: Readonly<Record<string, string>> | undefined }>): string[] {
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    const a = out[i]!;
    if (a === '--') break;
    if (a === '-o' || a === '--log-file') {
      i++; // its value, which may look like a command's name
      continue;
    }
    if (a.startsWith('-')) continue;
    const shadows = commands.find((c) => c.name === a)?.shadows;
    if (!shadows) break;
    for (let j = i + 1; j < out.length && out[j] !== '--'; j++) {
      const t = out[j]!;
      for (const [short, long] of Object.entries(shadows)) {
        if (t === short) out[j] = long;
        else if (t.startsWith(short) && !t.startsWith('--')) out[j] = `${long}=${t.slice(short.length)}`;
      }
    }
    break;
  }
  return out;
}

/**
 * A bare `-v` before a word (`criu-ts -v check`) would take the word as its level, since the
 * level is optional; CRIU reads that as level 1 and the word as the next argument. Make the
 * level explicit there so commander does the same.
 */
export function normalizeVerbosityArgs(argv: readonly string[]): string[] {
  return argv.map((a, i) => {
    const next = argv[i + 1];
    const bare = a === '-v' || a === '--verbosity';
    if (!bare || next === undefined || next.startsWith('-') || /^[0-4]$/.test(next)) return a;
    return a === '-v' ? '-v1' : '--verbosity=1';
  });
}
