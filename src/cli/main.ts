// The CLI frame: argv -> one command's typed options -> its run() -> output and exit code.
// bin/criu-ts.js calls start(); tests call parseArgv() and main() with their own io.
//
// Human output goes to stderr and --json output to stdout, so `criu-ts check --json | jq`
// sees only JSON. Errors of every kind meet in main()'s one catch, which prints one line
// `criu-ts: <message>` (the stack only at -v4) and picks the exit code.
import { appendFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { createLogger, type Logger } from '../log.js';
import { toolVersion } from '../paths.js';
import type { CliCommand, CliContext, CliIo, GlobalOptions } from './command.js';
import { COMMANDS } from './commands.js';
import { exitCodeFor, formatError } from './errors.js';
import { addGlobalOptions, DEFAULT_VERBOSITY, normalizeVerbosityArgs, readGlobals, shadowGlobalFlags } from './globals.js';

/** What a command line asks for, before anything runs. */
export interface Invocation {
  command: CliCommand;
  globals: GlobalOptions;
  /** The command's own typed options (its parse() result). */
  options: unknown;
  json: boolean;
}

/** Thrown by parseArgv when commander has printed help or the version: nothing to run. */
export class HelpShown extends Error {
  constructor(readonly exitCode: number) {
    super('help shown');
  }
}

export function buildProgram(io: CliIo, commands: readonly CliCommand[], onInvoke: (inv: Invocation) => void): Command {
  const program = new Command('criu-ts')
    .description('Checkpoint/restore of running Linux processes')
    .version(toolVersion(), '-V, --version')
    // Commander would print its own errors and exit the process; main() does both instead.
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} })
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true);
  addGlobalOptions(program);
  for (const c of commands) {
    const cmd = program.command(c.name).description(c.summary);
    c.configure(cmd);
    if (c.supportsJson) cmd.option('--json', 'print a machine-readable result on stdout');
    if (c.help) cmd.addHelpText('after', c.help);
    cmd.action((...params: unknown[]) => {
      // Commander passes the positional arguments, then the options, then the command.
      const self = params[params.length - 1] as Command;
      const raw = self.optsWithGlobals<Record<string, unknown>>();
      onInvoke({
        command: c,
        globals: readGlobals(raw),
        options: c.parse(self.opts(), self.args),
        json: raw.json === true,
      });
    });
  }
  return program;
}

/**
 * argv (without node and the script) -> the invocation. Throws UsageError / CommanderError
 * for a bad command line and HelpShown after --help or --version.
 */
export function parseArgv(argv: string[], io: CliIo, commands: readonly CliCommand[] = COMMANDS): Invocation {
  let inv: Invocation | undefined;
  const program = buildProgram(io, commands, (i) => (inv = i));
  try {
    program.parse(shadowGlobalFlags(normalizeVerbosityArgs(argv), commands), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError && ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(e.code)) {
      throw new HelpShown(e.exitCode);
    }
    throw e;
  }
  if (!inv) {
    // No command: commander has nothing to run. Show the overview, as for --help.
    program.outputHelp({ error: true });
    throw new HelpShown(1);
  }
  return inv;
}

/** Runs one command line; resolves with the exit code. Never calls process.exit. */
export async function main(
  argv: string[],
  io: CliIo,
  env: CliContext['env'] = process.env,
  commands: readonly CliCommand[] = COMMANDS,
): Promise<number> {
  let log: Logger | undefined;
  let globals: GlobalOptions = { verbosity: DEFAULT_VERBOSITY };
  try {
    const inv = parseArgv(argv, io, commands);
    globals = inv.globals;
    log = createLogger({ verbosity: globals.verbosity, file: globals.logFile, stderr: (l) => io.stderr(l + '\n'), name: 'criu-ts' });
    const outcome = await inv.command.execute(inv.options, inv.json, { log, io, globals, env });
    return outcome.exitCode;
  } catch (e) {
    if (e instanceof HelpShown) return e.exitCode;
    const line = formatError(e, { stack: globals.verbosity >= 4, root: process.geteuid?.() === 0 });
    io.stderr(line + '\n');
    if (globals.logFile) {
      log?.close();
      log = undefined;
      try {
        appendFileSync(globals.logFile, `Error: ${formatError(e, { stack: true, root: process.geteuid?.() === 0 })}\n`);
      } catch {
        // The log file is what failed: the message is on stderr already.
      }
    }
    return exitCodeFor(e);
  } finally {
    log?.close();
  }
}

/** The entry point of bin/criu-ts.js: real streams, exit code set, no process.exit. */
export async function start(): Promise<void> {
  // `criu-ts ... | head`: a closed stdout is the reader's choice, not our failure.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  const io: CliIo = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    // Getters: touching process.stdin makes fd 0 non-blocking, and a --shell-job restore
    // hands that very fd to the restored process, whose blocking read() must stay blocking.
    binary: {
      get stdout() {
        return process.stdout;
      },
      get stdin() {
        return process.stdin;
      },
    },
    stderrIsTTY: process.stderr.isTTY === true,
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
