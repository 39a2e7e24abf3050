// The shape of one CLI command, and what the frame hands it. A command is one module that
// exports a `defineCommand({...})`; adding it to the list in commands.ts is the only other
// change a new command needs.
//
//   argv ─► commander (main.ts) ─► spec.parse(raw options, args) ─► typed options
//        ─► spec.run(options, ctx) ─► result ─► spec.render / spec.json ─► stderr / stdout
//        ─► spec.exitCode(result)
//
// run() returns data and never prints or exits: printing is render()/json(), and the exit
// code is decided in main.ts, so every command is testable as a function.
import type { Command } from 'commander';
import type { Logger, Level } from '../log.js';

/** Where output goes: the real streams in the CLI, arrays in tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /**
   * The real streams, for commands that move bytes rather than text (pack to stdout, unpack
   * from stdin). Absent in tests that only capture text.
   */
  binary?: { stdout: NodeJS.WritableStream & { isTTY?: boolean }; stdin: NodeJS.ReadableStream & { isTTY?: boolean } };
  /** stderr is a terminal: long commands draw a progress line there, and only then. */
  stderrIsTTY?: boolean;
}

/** Options every command accepts (defined once on the program, see globals.ts). */
export interface GlobalOptions {
  verbosity: Level;
  logFile?: string;
}

export interface CliContext {
  log: Logger;
  io: CliIo;
  globals: GlobalOptions;
  /** The environment the CLI was started with (only the test-only switches read it). */
  env: Readonly<Record<string, string | undefined>>;
}

export interface CommandSpec<O, R> {
  name: string;
  /** One line for `criu-ts --help`. */
  summary: string;
  /** Longer text shown after the options in `criu-ts NAME --help`. */
  help?: string;
  /** Arguments and command-specific options. --json is added by the frame when json is set. */
  configure?(cmd: Command): void;
  /**
   * Global short flags this command takes for an option of its own, as tar does with -o:
   * after the command's name, `-o X` becomes `--output X` (see shadowGlobalFlags).
   */
  shadows?: Readonly<Record<string, string>>;
  /** Commander's option values and positional arguments -> typed options; throw UsageError. */
  parse(raw: Record<string, unknown>, args: string[]): O;
  run(options: O, ctx: CliContext): Promise<R>;
  /** Human-readable lines, written to stderr. */
  render(result: R, options: O): string[];
  /** The machine-readable result for --json, written to stdout. Commands without it have no --json. */
  json?(result: R, options: O): unknown;
  /** 0 unless said otherwise. */
  exitCode?(result: R, options: O): number;
}

export interface Outcome {
  exitCode: number;
}

/** A command with its types erased, so that commands.ts can hold a plain list of them. */
export interface CliCommand {
  readonly name: string;
  readonly summary: string;
  readonly help: string | undefined;
  readonly supportsJson: boolean;
  readonly shadows: Readonly<Record<string, string>> | undefined;
  configure(cmd: Command): void;
  parse(raw: Record<string, unknown>, args: string[]): unknown;
  execute(options: unknown, json: boolean, ctx: CliContext): Promise<Outcome>;
}

export function defineCommand<O, R>(spec: CommandSpec<O, R>): CliCommand {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    supportsJson: spec.json !== undefined,
    shadows: spec.shadows,
    configure: (cmd) => spec.configure?.(cmd),
    parse: (raw, args) => spec.parse(raw, args),
    async execute(options, json, ctx) {
      // `options` is what this spec's own parse() returned (main.ts pairs them).
      const o = options as O;
      const result = await spec.run(o, ctx);
      if (json && spec.json) ctx.io.stdout(JSON.stringify(spec.json(result, o), null, 2) + '\n');
      else for (const line of spec.render(result, o)) ctx.io.stderr(line + '\n');
      return { exitCode: spec.exitCode?.(result, o) ?? 0 };
    },
  };
}
