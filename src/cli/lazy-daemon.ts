// `restore --lazy -d`: the command must return once the process runs, but its page server
// must go on until all memory is in. So the command starts itself again, detached, to do the
// whole restore and serve; it waits for that daemon to report on a pipe (fd 3) that the
// process runs, and returns its report. The daemon stays the restored process's parent.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, writeSync } from 'node:fs';
import { CriuError } from '../errors.js';

/** Set in the daemon's environment: the fd to report on. */
export const DAEMON_ENV = 'CRIU_TS_LAZY_DAEMON';

export interface DaemonReport {
  pid: number;
  stats: Record<string, number>;
  serverPid: number;
}

/** In the command: start the daemon with the same arguments and wait for its report. */
export async function startDaemon(argv: string[], env: Record<string, string | undefined>): Promise<DaemonReport> {
  // The daemon's own result is for no one: its command (this one) prints the report.
  const child = spawn(process.execPath, argv.filter((a) => a !== '--json'), {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { ...env, [DAEMON_ENV]: '3' },
    detached: true,
  });
  let text = '';
  child.stdio[3]!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = once(child, 'exit');
  await Promise.race([once(child.stdio[3]!, 'end'), exited]);
  child.unref();
  (child.stdio[3] as unknown as { destroy(): void }).destroy();
  const line = text.split('\n')[0] ?? '';
  if (line.startsWith('ok ')) return { ...(JSON.parse(line.slice(3)) as { pid: number; stats: Record<string, number> }), serverPid: child.pid! };
  if (line.startsWith('err ')) throw new CriuError('EFAIL', line.slice(4));
  throw new CriuError('EFAIL', 'the lazy restore daemon exited without a report');
}

/** In the daemon: the report, once. */
export function report(fd: number, line: string): void {
  try {
    writeSync(fd, line.replace(/\n/g, ' ') + '\n');
    closeSync(fd);
  } catch {
    /* the command is gone: nobody to tell */
  }
}
