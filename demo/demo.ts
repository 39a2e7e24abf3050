// `npm run demo`: the tool's main job, end to end, on a bundled workload.
//
// A small key-value store (demo/workload.c, a few hundred MiB, updating records all the
// time) is started, pre-dumped twice while it works, dumped (only what changed since the
// last pass), restored with --lazy, asked to verify itself, and the timings are printed.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';

const root = packageRoot();
const cli = join(root, 'bin', 'criu-ts.js');
const MIB = Number(process.env.DEMO_MIB ?? 384);

class Lines {
  readonly all: string[] = [];
  private waiters: Array<() => void> = [];
  constructor(stream: NodeJS.ReadableStream) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop()!;
      this.all.push(...parts);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async wait(re: RegExp, ms = 60_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.all.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
}

function criu(args: string[]): { stats: Record<string, number>; [k: string]: unknown } {
  const out = execFileSync(process.execPath, [cli, ...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out) as { stats: Record<string, number> };
}

const ms = (n: number | undefined) => `${(n ?? 0).toFixed(1)} ms`;
const mb = (n: number | undefined) => `${((n ?? 0) / 1048576).toFixed(1)} MiB`;
const say = (s: string) => process.stdout.write(s + '\n');

async function main(): Promise<number> {
  if (process.geteuid?.() !== 0) {
    say('criu-ts demo: needs root (ptrace, userfaultfd and clone3 with set_tid are root-only here).');
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), 'criu-ts-demo-'));
  const bin = join(work, 'workload');
  let workload: ChildProcess | undefined;
  let restoredPid = 0;
  try {
    execFileSync('gcc', ['-O2', '-o', bin, join(root, 'demo', 'workload.c')], { stdio: 'inherit' });
    say(`1. Starting the workload: a key-value store of ${MIB} MiB that keeps updating records.`);
    // stdin and stdout are pipes of ours: --shell-job hands the restored process the
    // restorer's std fds, which here are pipes of ours too.
    workload = spawn(bin, [String(MIB)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const out = new Lines(workload.stdout!);
    await out.wait(/workload ready/);
    const pid = workload.pid!;
    await new Promise((r) => setTimeout(r, 500));

    say(`2. Pre-dump 1 (pid ${pid}): every page, copied while it runs.`);
    const p1 = criu(['pre-dump', '-t', String(pid), '-D', join(work, '1')]);
    say(`   ${mb(p1.stats.bytesRaw)} saved (${mb(p1.stats.bytesStored)} on disk), stopped ${ms(p1.stats.frozenMs)}, total ${ms(p1.stats.totalMs)}`);
    await new Promise((r) => setTimeout(r, 1000));
    say('3. Pre-dump 2: only the pages written since pre-dump 1 (uffd-wp async + PAGEMAP_SCAN).');
    const p2 = criu(['pre-dump', '-t', String(pid), '-D', join(work, '2'), '--prev-images-dir', '../1']);
    say(`   ${p2.stats.pagesWritten} pages written since, ${mb(p2.stats.bytesRaw)} saved, stopped ${ms(p2.stats.frozenMs)}, total ${ms(p2.stats.totalMs)}`);
    await new Promise((r) => setTimeout(r, 1000));
    say('4. Dump: catch-up passes while it runs (if much changed since pre-dump 2), then frozen:');
    say('   only what changed since the last pass; then the process is killed.');
    const exited = once(workload, 'exit');
    const d = criu(['dump', '-t', String(pid), '-D', join(work, '3'), '--prev-images-dir', '../2', '--shell-job']);
    if (d.stats.catchUpPasses) say(`   ${d.stats.catchUpPasses} catch-up pass${d.stats.catchUpPasses > 1 ? 'es' : ''}: ${d.stats.catchUpPages} pages saved in ${ms(d.stats.catchUpMs)} while it ran`);
    say(`   ${d.stats.pagesWritten} pages written since, ${mb(d.stats.bytesRaw)} saved, frozen ${ms(d.stats.frozenMs)}`);
    await exited;
    workload = undefined;

    say('5. Lazy restore: the process runs again at once; its memory follows on demand and in the background.');
    const restore = spawn(process.execPath, [cli, 'restore', '-D', join(work, '3'), '--shell-job', '--lazy', '-d', '--json'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const rout = new Lines(restore.stdout!);
    const [code] = (await once(restore, 'exit')) as [number];
    if (code !== 0) throw new Error(`restore failed (${code})`);
    const r = JSON.parse(rout.all.filter((l) => !/^(verified|CORRUPT|workload)/.test(l)).join('\n')) as { pid: number; serverPid: number; stats: Record<string, number> };
    restoredPid = r.pid;
    if (process.env.DEMO_DEBUG) say(JSON.stringify(r.stats) + JSON.stringify(d.stats));
    say(`   pid ${r.pid} running again ${ms(r.stats.totalMs)} after the restore started (lazy server: pid ${r.serverPid})`);

    say('6. Asking the restored workload to verify every record (it recomputes its checksum).');
    process.kill(r.pid, 'SIGUSR1');
    const verdict = await rout.wait(/^(verified|CORRUPT)/);
    say(`   ${verdict}`);
    // Wait for the page server to finish, then read its summary from the restore log.
    for (let i = 0; i < 600 && existsSync(`/proc/${r.serverPid}`) && !readFileSync(`/proc/${r.serverPid}/stat`, 'utf8').includes(') Z'); i++) {
      await new Promise((res) => setTimeout(res, 100));
    }
    const summary = readFileSync(join(work, '3', 'restore.log'), 'utf8').split('\n').find((l) => l.includes('lazy pages of'));
    if (summary) say(`   ${summary.replace(/^\([\d.]+\) /, '')}`);
    const ok = verdict.startsWith('verified');
    say(ok ? '\nThe restored process carried on where it was, with every record intact.' : '\nVERIFICATION FAILED');
    return ok ? 0 : 1;
  } finally {
    if (workload) workload.kill('SIGKILL');
    if (restoredPid) {
      try {
        process.kill(restoredPid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e: Error) => {
    process.stderr.write(`criu-ts demo: ${e.message}\n`);
    process.exitCode = 1;
  },
);
