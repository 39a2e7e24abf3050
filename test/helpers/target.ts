// Starting victim processes for tests. The victim runs under a small shell that is our
// child (dash gives a background job /dev/null as stdin unless it is passed on fd 4), so that the victim is *not* a libuv child of this process: libuv treats any
// waitpid result of its children, ptrace stops included, as an exit, which would steal the
// stops we trace in-process. The shell waits for the victim and reaps it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fixture } from './fixtures.js';

export class Target {
  readonly lines: string[] = [];
  /** The victim's stderr (and its shell's), kept for failure messages. */
  readonly errors: string[] = [];
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(
    readonly pid: number,
    readonly shell: ChildProcess,
  ) {
    let partial = '';
    shell.stdout!.setEncoding('utf8').on('data', (d: string) => {
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.waiters.splice(0)) w();
    });
    shell.stderr!.setEncoding('utf8').on('data', (d: string) => this.errors.push(d));
    this.exited = once(shell, 'exit').then(([code]) => code as number | null);
  }

  /** Resolves with the first output line matching; fails after timeoutMs. */
  async waitFor(match: string | RegExp, timeoutMs = 20_000): Promise<string> {
    const test = (l: string) => (typeof match === 'string' ? l.includes(match) : match.test(l));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(test);
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${match}; output so far:\n${this.lines.join('\n')}\nstderr:\n${this.errors.join('')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  write(data: string): void {
    this.shell.stdin!.write(data);
  }

  kill(sig: NodeJS.Signals = 'SIGKILL'): void {
    try {
      process.kill(this.pid, sig);
    } catch {
      /* already gone */
    }
  }

  /** Kill the victim and wait until its shell has reaped it. */
  async stop(): Promise<void> {
    this.kill('SIGKILL');
    this.shell.stdin?.end();
    if (this.shell.exitCode === null && this.shell.signalCode === null) await this.exited;
  }
}

export async function startTarget(cmd: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const shell = spawn('/bin/sh', ['-c', 'exec 4<&0; "$@" <&4 4<&- 3>&- & echo $! >&3; exec 3>&-; wait $!', 'sh', fixture('launch'), cmd, ...args], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    env,
  });
  let text = '';
  for await (const chunk of shell.stdio[3] as NodeJS.ReadableStream) {
    text += chunk.toString();
    if (text.includes('\n')) break;
  }
  const pid = Number(text.trim());
  if (!pid) throw new Error(`could not start ${cmd}`);
  return new Target(pid, shell);
}
