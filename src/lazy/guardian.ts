// The TypeScript side of native/guardian/guardian.c: start it, tell it which uffds to hold
// and which processes to kill should we die, and let it go once all memory is in.
// Talks over two pipes with synchronous reads and writes: the page server is a synchronous
// loop, and "the guardian holds it" must be true before a restored process runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CriuError } from '../errors.js';
import { native } from '../kernel/native.js';
import { O } from '../kernel/syscalls.js';
import { packageRoot } from '../paths.js';

export class Guardian {
  private constructor(
    private readonly child: ChildProcess,
    private readonly toFd: number,
    private readonly fromFd: number,
  ) {}

  /** logFd: where it says why it killed (the restore or lazy-pages log); -1 for nowhere. */
  static start(logFd: number): Guardian {
    const [toR, toW] = native.pipe2(O.CLOEXEC);
    const [fromR, fromW] = native.pipe2(O.CLOEXEC);
    try {
      const child = spawn(join(packageRoot(), 'build', 'Release', 'guardian'), [String(process.pid)], {
        stdio: [toR, fromW, logFd >= 0 ? logFd : 'ignore'],
        detached: true,
      });
      child.unref();
      return new Guardian(child, toW, fromR);
    } finally {
      closeSync(toR);
      closeSync(fromW);
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  private ask(line: string): void {
    writeSync(this.toFd, line + '\n');
    const buf = Buffer.alloc(128);
    let got = '';
    while (!got.includes('\n')) {
      const n = readSync(this.fromFd, buf, 0, buf.length, null);
      if (n <= 0) throw new CriuError('EPIPE', 'the guardian process is gone');
      got += buf.toString('utf8', 0, n);
    }
    if (!got.startsWith('ok')) throw new CriuError('EIO', `guardian: ${line}: ${got.trim()}`);
  }

  /** The guardian keeps a copy of our fd: the uffd stays registered even if we die. */
  hold(fd: number): void {
    this.ask(`hold ${fd}`);
  }

  /** A process the guardian kills if we die first. */
  watch(pid: number): void {
    this.ask(`watch ${pid}`);
  }

  /** All memory is in: the guardian lets go of the uffds and exits. */
  done(): void {
    try {
      writeSync(this.toFd, 'done\n');
    } catch {
      /* already gone */
    }
    closeSync(this.toFd);
    closeSync(this.fromFd);
  }
}
