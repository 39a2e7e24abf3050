// Pre-dump chains on targets that make write tracking harder: one that uses userfaultfd itself
// (its region cannot be registered: EBUSY), and ones that are not root (the injected
// userfaultfd() needs UFFD_USER_MODE_ONLY, and restore must give back their credentials).
import { settle } from '../helpers/fixture-cases.js';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture } from '../helpers/fixtures.js';
import { killAndReap, removeDir, runCli, tempDir } from '../helpers/cli.js';
import { addrOf, credsOf, ok, preDump, restoreAndVerify, show, statsOf, vmaAt, vmasWithFlag } from '../helpers/chain.js';
import { startTarget, type Target } from '../helpers/target.js';

let target: Target | undefined;
const dirs: string[] = [];
const reap = new Set<number>();
afterEach(async () => {
  await target?.stop();
  target = undefined;
  for (const p of reap) killAndReap(p);
  reap.clear();
  for (const d of dirs.splice(0)) removeDir(d);
});

function newDir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

/** The tracker of a pass: reparented to this worker (a subreaper) once the CLI exits. */
function noteTracker(dir: string): void {
  const inv = JSON.parse(readFileSync(join(dir, 'inventory.json'), 'utf8')) as { tracking?: Array<{ trackerPid: number }> };
  for (const t of inv.tracking ?? []) reap.add(t.trackerPid);
}

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

describe('pre-dump of a process that uses userfaultfd itself', () => {
  it('saves its region whole each pass with a notice, the process goes on unharmed, and dump refuses it cleanly', async () => {
    const base = newDir();
    target = await startTarget(fixture('fx_own_uffd'));
    await target.waitFor('ready');
    const pid = target.pid;
    const R = addrOf(target.lines, 'R');
    const S = addrOf(target.lines, 'S');
    expect(vmasWithFlag(pid, 'um')).toHaveLength(1); // its own MODE_MISSING registration

    const p1 = ok(await preDump(pid, join(base, '1')));
    noteTracker(join(base, '1'));
    expect(p1.stderr).toMatch(new RegExp(`VMA ${R}-0x[0-9a-f]+ : the process uses userfaultfd there itself; saved whole each pass`));
    const s1 = await show(join(base, '1'));
    expect(s1.notes.join('\n')).toMatch(/uses userfaultfd there itself/);
    expect(vmaAt(s1, R)!.pagesHere).toBe(16); // the present half; the missing half is never touched
    expect(vmaAt(s1, S)!.pagesHere).toBe(64);

    target.write('step 1\n');
    await target.waitFor('step 1 done');
    const p2 = ok(await preDump(pid, join(base, '2'), '../1'));
    expect(p2.stderr).toMatch(/uses userfaultfd there itself/);
    expect(statsOf(p2).pagesWritten).toBeGreaterThanOrEqual(16);
    const s2 = await show(join(base, '2'));
    expect(vmaAt(s2, R)!).toMatchObject({ pagesHere: 17, pagesInParent: 0 }); // whole again, plus the page it filled
    expect(vmaAt(s2, S)!).toMatchObject({ pagesHere: 16, pagesInParent: 48 }); // tracked as usual around it

    // The final dump cannot restore a uffd the process holds: it refuses, naming fd, kind and pid.
    const d = await runCli(['dump', '-t', String(pid), '-D', join(base, 'final'), '--prev-images-dir', '../2', '--shell-job']);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(new RegExp(`fd \\d+ of pid ${pid} is a userfaultfd \\(anon_inode:\\[userfaultfd\\]\\): not supported`));
    expect(d.stderr).toMatch(/the process was left running/);

    const stop = ok(await runCli(['pre-dump', '-t', String(pid), '-D', join(base, '2'), '--stop']));
    expect(stop.stderr).toMatch(/ended/);
    expect(vmasWithFlag(pid, 'uw')).toEqual([]);
    expect(vmasWithFlag(pid, 'um')).toHaveLength(1); // its own registration untouched

    target.write('step 2\n');
    await target.waitFor('step 2 done');
    await settle(target.pid);
    target.kill('SIGTERM');
    expect(await target.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });
});

describe('pre-dump chains of a process that is not root', () => {
  /** pre-dump, pre-dump, dump --prev-images-dir, restore; the restored process is still nobody. */
  async function chain(cmd: string, args: string[], between?: () => Promise<void>): Promise<void> {
    const base = newDir();
    target = await startTarget('/usr/bin/setpriv', [...NOBODY, cmd, ...args]);
    await target.waitFor('ready');
    const pid = target.pid;
    const before = credsOf(pid);
    expect(before).toEqual({ uid: '65534 65534 65534 65534', gid: '65534 65534 65534 65534', groups: '' });

    const p1 = ok(await preDump(pid, join(base, '1')));
    noteTracker(join(base, '1'));
    expect((JSON.parse(p1.stdout) as { notes: string[] }).notes.join('\n')).toMatch(/user-mode-only/);
    expect((await show(join(base, '1'))).notes.join('\n')).toMatch(/user-mode-only/);
    expect(vmasWithFlag(pid, 'uw').length).toBeGreaterThan(0); // tracking is on
    await between?.();
    const p2 = ok(await preDump(pid, join(base, '2'), '../1'));
    expect(p2.stderr).not.toMatch(/tracking .*was lost/);
    expect(statsOf(p2).pagesInParent).toBeGreaterThan(0);
    await between?.();
    const d = ok(await runCli(['dump', '-t', String(pid), '-D', join(base, 'final'), '--prev-images-dir', '../2', '--shell-job', '--json']));
    expect(statsOf(d).pagesInParent).toBeGreaterThan(0);
    await target.exited;
    await restoreAndVerify(join(base, 'final'), pid, (p) => reap.add(p), () => expect(credsOf(pid)).toEqual(before));
  }

  it('fx_scribble, storing all the time, is tracked in user-mode-only mode and restored exactly', async () => {
    await chain(fixture('fx_scribble'), ['32'], () => new Promise((r) => setTimeout(r, 100)));
  });

  it('fx_proc (rlimits, cwd, umask, no_new_privs, dumpable, ...) comes back with its state and credentials', async () => {
    const dir = newDir();
    chmodSync(dir, 0o777); // its cwd is made in here, by nobody
    await chain(fixture('fx_proc'), [dir]);
  });
});
