// Pre-dump chains on real processes: exact written sets per pass, continuous writers,
// lost tracking, nothing of ours left behind, damaged chains.
import { existsSync, readFileSync, readdirSync, readlinkSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SetSummary } from '../../src/images/describe.js';
import { rehearsalPrefix } from '../../src/dump/rehearsal.js';
import { CATCH_UP_MIN_BYTES } from '../../src/dump/catch-up.js';
import { recordPass, type TrackingInfo } from '../../src/dump/tracking.js';
import { fixture } from '../helpers/fixtures.js';
import { settle } from '../helpers/fixture-cases.js';
import { catchUpDirs, restoreAndVerify as verifyRestore, statsOf, vmasWithFlag } from '../helpers/chain.js';
import { killAndReap, removeDir, runCli, tempDir, type CliResult } from '../helpers/cli.js';
import { startTarget, type Target } from '../helpers/target.js';

let target: Target | undefined;
let base: string | undefined;
const restored: number[] = [];
afterEach(async () => {
  await target?.stop();
  target = undefined;
  for (const p of restored.splice(0)) killAndReap(p);
  if (base) removeDir(base);
  base = undefined;
});

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`criu-ts failed (${r.code}): ${r.stderr}`);
  return r;
}

async function show(dir: string): Promise<SetSummary> {
  return JSON.parse(ok(await runCli(['show', '-D', dir, '--json'])).stdout) as SetSummary;
}

const preDump = (pid: number, dir: string, prev?: string) =>
  runCli(['pre-dump', '-t', String(pid), '-D', dir, ...(prev ? ['--prev-images-dir', prev] : []), '--json']);

/** Restores the set in the foreground, sends SIGTERM, expects the fixture's PASS. */
const restoreAndVerify = (dir: string, pid: number) => verifyRestore(dir, pid, (p) => restored.push(p));

function addrOf(t: Target, name: string): string {
  const line = t.lines.find((l) => l.startsWith(`addr ${name} `));
  if (!line) throw new Error(`fixture did not print addr ${name}`);
  return '0x' + BigInt(line.split(' ')[2]!).toString(16);
}

const vmaAt = (s: SetSummary, start: string) => s.processes[0]!.vmas.find((v) => v.start === start);

/** fx_scribble storing all the time over 32 MiB, with a first pre-dump pass in DIR/1. */
async function scribbleWithFirstPass(): Promise<{ pid: number; dir: string; t: Target }> {
  const dir = (base = tempDir());
  const t = (target = await startTarget(fixture('fx_scribble'), ['32']));
  await t.waitFor('ready');
  ok(await preDump(t.pid, join(dir, '1')));
  return { pid: t.pid, dir, t };
}

describe('pre-dump chains', () => {
  it('saves exactly the pages written in each phase, and the chain restores byte-identical', async () => {
    base = tempDir();
    target = await startTarget(fixture('fx_phases'));
    await target.waitFor('ready');
    const pid = target.pid;
    const A = addrOf(target, 'A');
    const D = addrOf(target, 'D');
    ok(await preDump(pid, join(base, '0')));
    const first = vmaAt(await show(join(base, '0')), A)!;
    expect(first.pagesHere).toBe(700);

    for (let k = 1; k <= 6; k++) {
      target.write(`phase ${k}\n`);
      await target.waitFor(`phase ${k} done`);
      const r = ok(await preDump(pid, join(base, String(k)), `../${k - 1}`));
      const stats = (JSON.parse(r.stdout) as { stats: Record<string, number> }).stats;
      const s = await show(join(base, String(k)));
      const a = vmaAt(s, A)!;
      if (k === 5) {
        // MADV_DONTNEED: written (reported), but nothing to save and nothing left in the parent.
        expect([a.pagesHere, a.pagesInParent]).toEqual([0, 600]);
      } else {
        expect([a.pagesHere, a.pagesInParent]).toEqual([100, k > 5 ? 500 : 600]);
      }
      expect(stats.pagesWritten).toBeGreaterThanOrEqual(100);
      if (k === 1) expect(vmaAt(s, addrOf(target, 'B'))!.pagesHere).toBe(16); // a new mapping: whole
      if (k === 3) expect(vmaAt(s, D)!.pagesHere).toBe(8); // changed protection: whole
      if (k >= 2) expect(s.processes[0]!.vmas.some((v) => v.start === addrOf(target!, 'C'))).toBe(false);
    }
    // Phase 6 once more (the same pages, the same content): written since the last pass,
    // these 100 pages are what the final dump saves.
    target.write('phase 6\n');
    for (const until = Date.now() + 20_000; target.lines.filter((l) => l === 'phase 6 done').length < 2; ) {
      if (Date.now() > until) throw new Error('fx_phases did not do phase 6 again');
      await new Promise((r) => setTimeout(r, 20));
    }
    const fin = ok(await runCli(['dump', '-t', String(pid), '-D', join(base, 'final'), '--prev-images-dir', '../6', '--shell-job', '--json']));
    const finStats = (JSON.parse(fin.stdout) as { stats: Record<string, number> }).stats;
    expect(finStats.pagesSaved).toBeGreaterThanOrEqual(100);
    await target.exited;
    // The PARENT ranges are worked out once the pages are copied: counted as the index has them.
    const finalSet = await show(join(base, 'final'));
    expect(finStats.pagesInParent).toBeGreaterThan(0);
    expect(finStats.pagesInParent).toBe(finalSet.processes[0]!.vmas.reduce((n, v) => n + v.pagesInParent, 0));
    // The passes are compressed; the end of the tracked chain stores its frames as they are.
    const dir = base;
    const pages = async (d: string) => (await show(join(dir, d))).processes[0]!.pages;
    expect((await pages('6')).uncompressedFrames).toBe(0);
    const last = await pages('final');
    expect(last.frames).toBeGreaterThan(0);
    expect([last.uncompressedFrames, last.storedBytes]).toEqual([last.frames, last.rawBytes]);
    await restoreAndVerify(join(base, 'final'), pid);
  });

  it('a process storing random words all the time is restored as it was at the final freeze', async () => {
    base = tempDir();
    // 256 MiB: two of the written-pages scan's slices (SCAN_SLICE in plan.ts), so the final
    // dump copies the first slice's pages while the second is scanned.
    target = await startTarget(fixture('fx_scribble'), ['256']);
    await target.waitFor('ready');
    const pid = target.pid;
    let prev: string | undefined;
    for (const pass of ['1', '2', '3']) {
      ok(await preDump(pid, join(base, pass), prev));
      prev = `../${pass}`;
      await new Promise((r) => setTimeout(r, 200));
    }
    const d = ok(await runCli(['dump', '-t', String(pid), '-D', join(base, 'final'), '--prev-images-dir', prev!, '--shell-job', '--json']));
    expect((JSON.parse(d.stdout) as { stats: Record<string, number> }).stats.pagesInParent).toBeGreaterThan(0);
    await target.exited;
    await restoreAndVerify(join(base, 'final'), pid);
  });

  it('a final dump catches up while the process runs (not with --no-catch-up), and the chain restores exactly', async () => {
    const { pid, dir, t } = await scribbleWithFirstPass();
    const dumpTo = (sub: string, more: string[], env?: Record<string, string>) =>
      runCli(['dump', '-t', String(pid), '-D', join(dir, sub), '--prev-images-dir', '../1', '--shell-job', '--json', ...more], env);
    // Without it: no such pass (the attempt fails after its copy, so the chain stays at 1).
    const without = await dumpTo('plain', ['--no-catch-up'], { CRIU_TS_FAULT: 'pages:fail' });
    expect(without.code, without.stderr).toBe(1);
    expect(without.stderr).not.toMatch(/catch-up/);
    expect(existsSync(join(dir, 'plain', 'catch-up'))).toBe(false);
    const r = ok(await dumpTo('final', []));
    expect(r.stderr).not.toMatch(/tracking .*was lost|goes on from/);
    // 32 MiB were written since pass 1: a catch-up pass saves them (and another follows if it
    // found fewer written: see anotherCatchUp); the final set goes on from the last.
    const st = statsOf(r);
    const ups = catchUpDirs(join(dir, 'final'), st.catchUpPasses!);
    expect(ups.length).toBeGreaterThanOrEqual(1);
    const s = await show(join(dir, 'final'));
    expect(join(dir, 'final', s.parent!)).toBe(ups[0]);
    expect(s.chain.map((c) => c.dir)).toEqual([...ups, join(dir, '1')]);
    let saved = 0;
    for (const up of ups) {
      const inv = JSON.parse(readFileSync(join(up, 'inventory.json'), 'utf8')) as { kind: string; options: { catchUp?: boolean } };
      expect([inv.kind, inv.options.catchUp]).toEqual(['pre-dump', true]);
      saved += (await show(up)).processes[0]!.vmas.reduce((n, v) => n + v.pagesHere, 0);
    }
    expect(saved).toBe(st.catchUpPages);
    // --json gives each catch-up pass's own statistics, as pre-dump's does for a pass.
    const passes = (JSON.parse(r.stdout) as { catchUps: Array<{ dir: string; stats: Record<string, number> }> }).catchUps;
    expect(passes.map((p) => join(dir, 'final', p.dir))).toEqual([...ups].reverse());
    expect(passes.reduce((n, p) => n + p.stats.pagesSaved!, 0)).toBe(st.catchUpPages);
    for (const p of passes) expect(p.stats.pagesWritten).toBeGreaterThan(0);
    expect(vmaAt(await show(ups[ups.length - 1]!), addrOf(t, 'buf'))!.pagesHere).toBeGreaterThanOrEqual(CATCH_UP_MIN_BYTES / 4096);
    expect(s.foreignFiles).toEqual([]);
    await t.exited;
    await restoreAndVerify(join(dir, 'final'), pid);
  });

  it('a catch-up pass that fails or dies after its scan leaves the process running and tracked; the retry saves everything and restores exactly', async () => {
    const { pid, dir, t } = await scribbleWithFirstPass();
    const attempt = (sub: string, prev: string, fault: string) => runCli(['dump', '-t', String(pid), '-D', join(dir, sub), '--prev-images-dir', prev, '--shell-job', '--json'], { CRIU_TS_FAULT: fault });
    // Failed after its protecting scan: its set has no inventory, so nothing can go on from it.
    const failed = await attempt('try1', '../1', 'catch-up/plan:fail');
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(/fault injected at plan/);
    expect(existsSync(join(dir, 'try1', 'catch-up', 'inventory.json'))).toBe(false);
    expect(vmasWithFlag(pid, 'uw')).not.toEqual([]);
    // So a pass from 1 starts tracking afresh (and saves everything)...
    expect(ok(await preDump(pid, join(dir, '2'), '../1')).stderr).toMatch(/tracking of \d+ was lost \(the parent set is not the chain's last pass/);
    // ...and a dump from it is killed (a crash, the OOM killer) after its catch-up's copy: the
    // process was never stopped.
    const killed = await attempt('try2', '../2', 'catch-up/pages:kill');
    expect([killed.code, killed.signal]).toEqual([null, 'SIGKILL']);
    expect(vmasWithFlag(pid, 'uw')).not.toEqual([]);
    // That catch-up is not complete either: the pages its scan protected again are in no set,
    // so the retry counts the tracking as lost and saves everything (fx_scribble checks every word).
    const r = ok(await attempt('final', '../2', ''));
    expect(r.stderr).toMatch(/tracking of \d+ was lost \(the parent set is not the chain's last pass/);
    expect(r.stderr).not.toMatch(/goes on from/);
    expect(statsOf(r).catchUpPasses).toBeUndefined();
    expect(vmaAt(await show(join(dir, 'final')), addrOf(t, 'buf'))!.pagesHere).toBe(32 * 256);
    await t.exited;
    await restoreAndVerify(join(dir, 'final'), pid);
  });

  it('notices lost tracking (tracker killed), saves everything again, and still restores exactly', async () => {
    const { pid, dir, t } = await scribbleWithFirstPass();
    const inv = JSON.parse(readFileSync(join(dir, '1', 'inventory.json'), 'utf8')) as { tracking: Array<{ trackerPid: number }> };
    process.kill(inv.tracking[0]!.trackerPid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const r = ok(await preDump(pid, join(dir, '2'), '../1'));
    expect(r.stderr).toMatch(/tracking .*was lost/);
    const s = await show(join(dir, '2'));
    expect(s.notes.join(' ')).toMatch(/tracking .*was lost/);
    const buf = vmaAt(s, addrOf(t, 'buf'))!;
    expect(buf.pagesHere).toBe(32 * 256); // every page saved again
    ok(await runCli(['dump', '-t', String(pid), '-D', join(dir, 'final'), '--prev-images-dir', '../2', '--shell-job']));
    await t.exited;
    await restoreAndVerify(join(dir, 'final'), pid);
  });

  it('continues only from the last pass: after a pass that failed past its scan, or from a parent the chain went past, everything is saved again', async () => {
    const { pid, dir, t } = await scribbleWithFirstPass();
    const buf = async (set: string) => vmaAt(await show(join(dir, set)), addrOf(t, 'buf'))!.pagesHere;
    // Its scan protected the pages written since pass 1 again; the pass then failed.
    const failed = await runCli(['pre-dump', '-t', String(pid), '-D', join(dir, '2'), '--prev-images-dir', '../1'], { CRIU_TS_FAULT: 'plan:fail' });
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(/fault injected/);
    // So pass 1 no longer tells what changed: a retry from it saves everything (and starts afresh).
    const retry = ok(await preDump(pid, join(dir, '2b'), '../1'));
    expect(retry.stderr).toMatch(/tracking of \d+ was lost \(the parent set is not the chain's last pass/);
    expect(await buf('2b')).toBe(32 * 256);
    const next = ok(await preDump(pid, join(dir, '3'), '../2b'));
    expect(next.stderr).not.toMatch(/was lost/); // 2b is the last pass: pass 3 continues from it
    // A second pass that took the tracking from 2b while pass 3 ran is refused before its scan,
    // and the record still names pass 3.
    const inv = (set: string) => JSON.parse(readFileSync(join(dir, set, 'inventory.json'), 'utf8')) as { id: string; tracking: TrackingInfo[] };
    expect(() => recordPass(inv('3').tracking[0]!, inv('2b').id, 'another')).toThrow(/another pass of the chain of \d+ ran since its parent/);
    expect(() => recordPass(inv('3').tracking[0]!, inv('3').id, inv('3').id)).not.toThrow();
    // A dump from 2b, which pass 3 went past, saves everything too; the process comes back exact.
    const d = ok(await runCli(['dump', '-t', String(pid), '-D', join(dir, 'final'), '--prev-images-dir', '../2b', '--shell-job']));
    expect(d.stderr).toMatch(/tracking of \d+ was lost \(the parent set is not the chain's last pass/);
    await t.exited;
    await restoreAndVerify(join(dir, 'final'), pid);
  });

  it('a final dump that fails, before or after its scan, leaves a chain its retry goes on from: the retry saves only the changes and restores exactly', async () => {
    const { pid, dir, t } = await scribbleWithFirstPass();
    const attempt = (sub: string, fault: string, more: string[]) => runCli(['dump', '-t', String(pid), '-D', join(dir, sub), '--prev-images-dir', '../1', '--shell-job', ...more], { CRIU_TS_FAULT: fault });
    // The third fails after --leave-running let the process go on writing (before the sync).
    // Each attempt catches up first (32 MiB written since: see catch-up.ts), then fails: the
    // next one, from the same parent, goes on from that catch-up pass.
    const tries = [['try1', 'files:fail', []], ['try2', 'pages:fail', []], ['try3', 'write:fail', ['-R']]] as const;
    /** Where each failed attempt left the tracking: its last catch-up set. */
    const lastUps: string[] = [];
    for (const [sub, fault, more] of tries) {
      const r = await attempt(sub, fault, [...more]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/fault injected/);
      expect(r.stderr).not.toMatch(/tracking .*(lost|ended)/);
      const up = /now continues from (\S+) \(this dump's catch-up pass\)/.exec(r.stderr)?.[1];
      expect(up, r.stderr).toMatch(new RegExp(`^${join(dir, sub)}/catch-up(-\\d)?$`));
      if (lastUps.length) expect(r.stderr).toContain(`this one goes on from it (${lastUps[lastUps.length - 1]})`);
      lastUps.push(up!);
      expect(vmasWithFlag(pid, 'uw')).not.toEqual([]); // still tracked
    }
    // The pages written before the failed attempts are still seen as written, or saved in a
    // catch-up pass the retry goes on from: none is missed. fx_scribble checks every word
    // after the restore.
    const r = ok(await runCli(['dump', '-t', String(pid), '-D', join(dir, 'final'), '--prev-images-dir', '../1', '--shell-job', '--json']));
    expect(r.stderr).not.toMatch(/tracking .*was lost/);
    expect(r.stderr).toContain(`this one goes on from it (${lastUps[lastUps.length - 1]})`);
    // The chain: the final dump's catch-up sets, then each failed attempt's (newest first), then 1.
    const chain = (await show(join(dir, 'final'))).chain.map((c) => c.dir);
    const ups = catchUpDirs(join(dir, 'final'), statsOf(r).catchUpPasses!);
    expect(chain.slice(0, ups.length)).toEqual(ups);
    expect(chain[chain.length - 1]).toBe(join(dir, '1'));
    const between = chain.slice(ups.length, -1);
    for (const d of between) expect(d).toMatch(new RegExp(`^${dir}/try\\d/catch-up(-\\d)?$`));
    expect(lastUps.every((u) => between.includes(u))).toBe(true);
    const attemptOf = (d: string) => basename(dirname(d));
    expect(between.map(attemptOf)).toEqual(between.map(attemptOf).sort().reverse());
    const stats = (JSON.parse(r.stdout) as { stats: Record<string, number> }).stats;
    expect(stats.pagesInParent).toBeGreaterThan(0); // a real continuation, not a full save
    await t.exited;
    await restoreAndVerify(join(dir, 'final'), pid);
  });

  it('leaves nothing of ours in the process after dump --leave-running and after pre-dump --stop', async () => {
    base = tempDir();
    target = await startTarget(fixture('fx_phases'));
    await target.waitFor('ready');
    const pid = target.pid;
    const fdsBefore = readdirSync(`/proc/${pid}/fd`).map((f) => readlinkSync(`/proc/${pid}/fd/${f}`));
    const mapsBefore = readFileSync(`/proc/${pid}/maps`, 'utf8');
    const clean = () => {
      expect(readdirSync(`/proc/${pid}/fd`).map((f) => readlinkSync(`/proc/${pid}/fd/${f}`))).toEqual(fdsBefore);
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toBe(mapsBefore);
      const flags = readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n').filter((l) => l.startsWith('VmFlags:'));
      expect(flags.filter((l) => / uw( |$)/.test(l))).toEqual([]);
    };
    ok(await preDump(pid, join(base, '1')));
    expect(readFileSync(`/proc/${pid}/smaps`, 'utf8')).toMatch(/VmFlags:.* uw/); // tracking is on
    ok(await preDump(pid, join(base, '2'), '../1'));
    const fin = ok(await runCli(['dump', '-t', String(pid), '-D', join(base, 'final'), '--prev-images-dir', '../2', '--shell-job', '-R', '-v4']));
    // The final plan and copy were rehearsed before the freeze, and their throwaway set is gone.
    expect(fin.stderr).toMatch(new RegExp(`rehearsal \\(pid ${pid}\\): (all \\d+ pages in )?[\\d.]+ ms`));
    expect(readdirSync('/dev/shm').filter((n) => n.startsWith(rehearsalPrefix(pid)))).toEqual([]);
    clean();
    ok(await preDump(pid, join(base, 'again')));
    const stop = ok(await runCli(['pre-dump', '-t', String(pid), '-D', join(base, 'again'), '--stop']));
    expect(stop.stderr).toMatch(/ended/);
    clean();
    // Still fine: the process verifies itself.
    await settle(pid);
    target.kill('SIGTERM');
    expect(await target.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });

  it('refuses a damaged chain: a missing parent, and a parent of another process', async () => {
    base = tempDir();
    target = await startTarget(fixture('fx_phases'));
    await target.waitFor('ready');
    ok(await preDump(target.pid, join(base, '1')));
    const other = await startTarget(fixture('fx_phases'));
    try {
      await other.waitFor('ready');
      const r = await preDump(other.pid, join(base, 'x'), '../1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`inventory.json: the parent set is of process ${target.pid}, not ${other.pid}`));
    } finally {
      await other.stop();
    }
    ok(await preDump(target.pid, join(base, '2'), '../1'));
    ok(await runCli(['dump', '-t', String(target.pid), '-D', join(base, 'final'), '--prev-images-dir', '../2', '--shell-job', '-R']));
    renameSync(join(base, '1'), join(base, 'gone'));
    const r = await runCli(['restore', '-D', join(base, 'final'), '--shell-job']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/parent set \.\.\/1 .*does not exist/);
    expect(() => process.kill(target!.pid, 0)).not.toThrow(); // the original still runs, untouched
  });
});
