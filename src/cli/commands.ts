// Every CLI command, in the order `criu-ts --help` lists them. A new command is its own
// module (see check.ts) plus one line here.
import type { CliCommand } from './command.js';
import check from './check.js';

export const COMMANDS: readonly CliCommand[] = [
  check,
];
