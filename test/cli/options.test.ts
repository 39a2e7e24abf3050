// argv -> options, table-driven, without running any command.
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { defineCommand, type CliIo } from '../../src/cli/command.js';
import { COMMANDS } from '../../src/cli/commands.js';
import { EXIT, exitCodeFor, formatError, UsageError } from '../../src/cli/errors.js';
import { normalizeVerbosityArgs, parseVerbosity } from '../../src/cli/globals.js';
import { HelpShown, main, parseArgv } from '../../src/cli/main.js';

function capture(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) };
}

function parse(argv: string[]) {
  const inv = parseArgv(argv, capture());
  return { command: inv.command.name, globals: inv.globals, options: inv.options, json: inv.json };
}

describe('argv -> options', () => {
  const table: Array<[string[], ReturnType<typeof parse>]> = [
    [['check'], { command: 'check', globals: { verbosity: 1 }, options: {}, json: false }],
    [['check', '--json'], { command: 'check', globals: { verbosity: 1 }, options: {}, json: true }],
    [['check', '--feature', 'rseq'], { command: 'check', globals: { verbosity: 1 }, options: { feature: 'rseq' }, json: false }],
    [['check', '--feature=zstd', '--json'], { command: 'check', globals: { verbosity: 1 }, options: { feature: 'zstd' }, json: true }],
    [['check', '-v4'], { command: 'check', globals: { verbosity: 4 }, options: {}, json: false }],
    [['check', '-v', '4'], { command: 'check', globals: { verbosity: 4 }, options: {}, json: false }],
    [['check', '-v0'], { command: 'check', globals: { verbosity: 0 }, options: {}, json: false }],
    [['check', '--verbosity=3'], { command: 'check', globals: { verbosity: 3 }, options: {}, json: false }],
    [['check', '--verbosity', '2'], { command: 'check', globals: { verbosity: 2 }, options: {}, json: false }],
    [['check', '-v'], { command: 'check', globals: { verbosity: 1 }, options: {}, json: false }],
    [['check', '-vv'], { command: 'check', globals: { verbosity: 2 }, options: {}, json: false }],
    [['check', '-vvv'], { command: 'check', globals: { verbosity: 3 }, options: {}, json: false }],
    [['check', '-vvvvvv'], { command: 'check', globals: { verbosity: 4 }, options: {}, json: false }],
    // Global options before the command, CRIU's order and the usual one both work.
    [['-v4', 'check'], { command: 'check', globals: { verbosity: 4 }, options: {}, json: false }],
    [['-v', '3', 'check'], { command: 'check', globals: { verbosity: 3 }, options: {}, json: false }],
    [['-v', 'check', '--json'], { command: 'check', globals: { verbosity: 1 }, options: {}, json: true }],
    [['-vv', 'check'], { command: 'check', globals: { verbosity: 2 }, options: {}, json: false }],
    [['-o', '/tmp/x.log', 'check'], { command: 'check', globals: { verbosity: 1, logFile: '/tmp/x.log' }, options: {}, json: false }],
    [['check', '--log-file', 'a.log', '-v2'], { command: 'check', globals: { verbosity: 2, logFile: 'a.log' }, options: {}, json: false }],
    [['check', '-o', 'a.log', '--feature', 'ptrace', '--json', '-vvvv'], { command: 'check', globals: { verbosity: 4, logFile: 'a.log' }, options: { feature: 'ptrace' }, json: true }],
  ];
  it.each(table)('%j', (argv, want) => {
    expect(parse(argv)).toEqual(want);
  });

  const bad: Array<[string[], RegExp]> = [
    [['check', '-v9'], /verbosity.*'9' is invalid/],
    [['check', '-vx'], /verbosity.*'x' is invalid/],
    // A bare -v takes no word as its level (CRIU reads it as -v1), so the word is an argument.
    [['check', '-v', 'x'], /too many arguments/],
    [['check', '--bogus'], /unknown option '--bogus'/],
    [['check', '--feature'], /argument missing/],
    [['chek'], /unknown command 'chek'/],
    [['check', 'extra'], /too many arguments/],
  ];
  it.each(bad)('%j is a usage error', (argv, message) => {
    let err: unknown;
    try {
      parseArgv(argv, capture());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CommanderError);
    expect(exitCodeFor(err)).toBe(EXIT.USAGE);
    expect(formatError(err, { stack: false, root: true })).toMatch(message);
    expect(formatError(err, { stack: false, root: true })).not.toContain('\n');
  });

  it('shows help for --help, for every command, on stdout', () => {
    for (const argv of [['--help'], ...COMMANDS.map((c) => [c.name, '--help']), ['help', 'check']]) {
      const io = capture();
      expect(() => parseArgv(argv, io)).toThrow(HelpShown);
      expect(io.out.join('')).toMatch(/^Usage: criu-ts/);
    }
  });

  it('check --help lists its options and the global ones', () => {
    const io = capture();
    expect(() => parseArgv(['check', '--help'], io)).toThrow(expect.objectContaining({ exitCode: 0 }));
    const text = io.out.join('');
    for (const s of ['Usage: criu-ts check', '--feature <name>', '--json', '-v, --verbosity', '-o, --log-file']) expect(text).toContain(s);
  });

  it('no command prints the overview and fails', async () => {
    const io = capture();
    expect(await main([], io)).toBe(1);
    expect(io.err.join('')).toMatch(/^Usage: criu-ts/);
  });
});

describe('verbosity', () => {
  it('parses levels and v counts', () => {
    expect(['0', '1', '2', '3', '4', '', 'v', 'vv', 'vvv'].map(parseVerbosity)).toEqual([0, 1, 2, 3, 4, 1, 2, 3, 4]);
    expect(() => parseVerbosity('5')).toThrow(/level from 0 to 4/);
    expect(() => parseVerbosity('-1')).toThrow(/level from 0 to 4/);
  });

  it('makes a bare -v before a word explicit', () => {
    expect(normalizeVerbosityArgs(['-v', 'check'])).toEqual(['-v1', 'check']);
    expect(normalizeVerbosityArgs(['--verbosity', 'check'])).toEqual(['--verbosity=1', 'check']);
    expect(normalizeVerbosityArgs(['-v', '3', 'check'])).toEqual(['-v', '3', 'check']);
    expect(normalizeVerbosityArgs(['check', '-v', '--json'])).toEqual(['check', '-v', '--json']);
    expect(normalizeVerbosityArgs(['check', '-v'])).toEqual(['check', '-v']);
  });
});

describe('the frame', () => {
  // A command that only echoes: the frame's output, json and exit-code plumbing, no kernel.
  const echo = defineCommand<{ word: string }, { word: string }>({
    name: 'echo',
    summary: 'test command',
    configure: (cmd) => cmd.argument('<word>'),
    parse: (_raw, args) => {
      if (args[0] === 'bad') throw new UsageError('bad word');
      return { word: args[0]! };
    },
    run: async (o) => {
      if (o.word === 'fail') throw Object.assign(new Error('it failed\non two lines'), { code: 'EPERM' });
      return { word: o.word };
    },
    render: (r) => [`word: ${r.word}`],
    json: (r) => r,
    exitCode: (r) => (r.word === 'three' ? 3 : 0),
  });

  it('parses a new command registered with defineCommand', () => {
    const inv = parseArgv(['echo', 'hi', '--json'], capture(), [echo]);
    expect(inv.options).toEqual({ word: 'hi' });
    expect(inv.json).toBe(true);
    expect(() => parseArgv(['echo', 'bad'], capture(), [echo])).toThrow(UsageError);
  });

  it('runs it: human output on stderr, --json on stdout, its exit code', async () => {
    let io = capture();
    expect(await main(['echo', 'hi'], io, {}, [echo])).toBe(0);
    expect(io).toMatchObject({ out: [], err: ['word: hi\n'] });
    io = capture();
    expect(await main(['echo', 'hi', '--json'], io, {}, [echo])).toBe(0);
    expect(JSON.parse(io.out.join(''))).toEqual({ word: 'hi' });
    expect(io.err).toEqual([]);
    expect(await main(['echo', 'three'], capture(), {}, [echo])).toBe(3);
  });

  it('maps a failure to one line and an exit code; the stack only at -v4', async () => {
    let io = capture();
    expect(await main(['echo', 'fail'], io, {}, [echo])).toBe(EXIT.FAILURE);
    expect(io.err).toEqual([`criu-ts: it failed on two lines${process.geteuid!() === 0 ? '' : ' (not running as root: criu-ts needs root)'}\n`]);
    io = capture();
    expect(await main(['echo', 'fail', '-v4'], io, {}, [echo])).toBe(EXIT.FAILURE);
    expect(io.err.join('')).toMatch(/^criu-ts: it failed on two lines.*\nError: it failed\non two lines\n\s+at /s);
    io = capture();
    expect(await main(['echo', 'bad'], io, {}, [echo])).toBe(EXIT.USAGE);
    expect(io.err).toEqual(['criu-ts: bad word\n']);
  });

  it('formats errors on one line, with the stack only when asked', () => {
    const e = Object.assign(new Error('remote mmap(12)\n: Bad file descriptor'), { code: 'EBADF' });
    expect(formatError(e, { stack: false, root: true })).toBe('criu-ts: remote mmap(12) : Bad file descriptor');
    const withStack = formatError(new Error('outer', { cause: new Error('inner') }), { stack: true, root: true });
    expect(withStack.split('\n')[0]).toBe('criu-ts: outer');
    expect(withStack).toContain('caused by: Error: inner');
    const refused = Object.assign(new Error('clone3: Operation not permitted (EPERM)'), { code: 'EPERM' });
    expect(formatError(refused, { stack: false, root: false })).toContain('needs root');
    expect(formatError(refused, { stack: false, root: true })).not.toContain('needs root');
    expect(exitCodeFor(refused)).toBe(EXIT.FAILURE);
    expect(exitCodeFor(new UsageError('x'))).toBe(EXIT.USAGE);
  });
});
