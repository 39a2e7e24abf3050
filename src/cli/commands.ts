// Every CLI command, in the order `criu-ts --help` lists them. A new command is its own
// module (see check.ts) plus one line here.
import type { CliCommand } from './command.js';
import check from './check.js';
import dump from './dump.js';
import pack from './pack.js';
import preDump from './pre-dump.js';
import restore from './restore.js';
import lazyPages from './lazy-pages.js';
import show from './show.js';
import unpack from './unpack.js';

export const COMMANDS: readonly CliCommand[] = [
  check,
  preDump,
  dump,
  restore,
  lazyPages,
  show,
  pack,
  unpack,
];
