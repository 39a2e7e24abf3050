// Shipping a checkpoint: a real pre-dump chain (pre-dump, pre-dump, dump of fx_scribble) packed,
// unpacked (from a file, and through a pipe between two criu-ts processes) and restored, and
// restored and shown straight from the archive; then the same cycle through the library API.
// The fixture checks every word of its memory on SIGTERM: PASS means nothing was lost.
import { settle } from '../helpers/fixture-cases.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dump, preDump, restore, type Progress } from '../../src/index.js';
import type { SetSummary } from '../../src/images/describe.js';
import { Archive } from '../../src/pack/archive.js';
import { cliPath, killAndReap, removeDir, runCli, startCli, tempDir, type CliResult } from '../helpers/cli.js';
import { fixture } from '../helpers/fixtures.js';
import { startTarget, type Target } from '../helpers/target.js';

let base = '';
let pid = 0;
/** The final dump's catch-up passes (see catch-up.ts), each a set of the chain. */
let catchUps = 0;
const restored: number[] = [];
let target: Target | undefined;

/** The one-letter state of pid (R, S, Z ...), or null once nothing of it is left. */
function procState(p: number): string | null {
  try {
    return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]![0]!;
  } catch {
    return null;
  }
}

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`criu-ts failed (${r.code}): ${r.stderr}`);
  return r;
}

/** Restores (foreground, so the fixture's verdict reaches us), sends SIGTERM, expects PASS. */
async function restoreAndVerify(args: string[]): Promise<void> {
  const r = startCli(['-v2', 'restore', ...args, '--shell-job']);
  await r.waitFor('err', /restored pid/);
  restored.push(pid);
  await settle(pid);
  process.kill(pid, 'SIGTERM');
  const [code] = await r.exited;
  expect(r.out.find((l) => /^(PASS|FAIL)/.test(l)) ?? `no verdict: ${r.out.join('|')} ${r.err.join('|')}`).toBe('PASS');
  expect(code).toBe(0);
}

/** Every file under dir, relative, with its content. */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

beforeAll(async () => {
  base = tempDir('criu-ts-pack-');
  // 32 MiB rewritten all the time: the dump catches up first (see catch-up.ts), so the chain
  // is 1, 2, 3/catch-up (and more catch-up sets, if a pass found fewer pages written), 3.
  const t = await startTarget(fixture('fx_scribble'), ['32']);
  try {
    await t.waitFor('ready');
    pid = t.pid;
    const pre = (dir: string, prev?: string) => runCli(['pre-dump', '-t', String(pid), '-D', join(base, dir), ...(prev ? ['--prev-images-dir', prev] : [])]);
    ok(await pre('1'));
    ok(await pre('2', '../1'));
    const d = ok(await runCli(['dump', '-t', String(pid), '-D', join(base, '3'), '--prev-images-dir', '../2', '--shell-job', '--json']));
    catchUps = (JSON.parse(d.stdout) as { stats: Record<string, number> }).stats.catchUpPasses ?? 0;
    await t.exited;
  } finally {
    await t.stop();
  }
  ok(await runCli(['pack', '-D', join(base, '3'), '-o', join(base, 'ckpt.tar')]));
});

afterEach(async () => {
  for (const p of restored.splice(0)) killAndReap(p);
  await target?.stop();
  target = undefined;
});

afterAll(() => {
  if (pid && procState(pid)) killAndReap(pid);
  if (base) removeDir(base);
});

describe('pack and unpack a pre-dump chain', () => {
  it('pack -o FILE, unpack -i FILE, restore -D DIR: the process is whole', async () => {
    const r = ok(await runCli(['unpack', '-i', join(base, 'ckpt.tar'), '-D', join(base, 'from-file')]));
    expect(catchUps).toBeGreaterThanOrEqual(1); // the catch-up sets travel with the chain
    expect(r.stderr).toMatch(new RegExp(`^Unpacked ${3 + catchUps} sets of pid \\d+ into .*from-file: \\d+ files`));
    expect(r.stderr).not.toContain('\r'); // no progress line: stderr is not a terminal
    expect(readdirSync(join(base, 'from-file', 'parents')).sort()).toEqual(Array.from({ length: 2 + catchUps }, (_, i) => String(i + 1)));
    await restoreAndVerify(['-D', join(base, 'from-file')]);
  });

  it('pack to stdout through a pipe into unpack from stdin gives the same files', async () => {
    const into = join(base, 'from-pipe');
    // A real pipe between two criu-ts processes, as `... | ssh host criu-ts unpack` has.
    const sh = spawn('/bin/sh', ['-c', `"${process.execPath}" "${cliPath}" pack -D "$1" | "${process.execPath}" "${cliPath}" unpack -D "$2" --json`, 'sh', join(base, '3'), into], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sh.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(sh, 'exit')) as [number];
    expect(code, err).toBe(0);
    expect(err).toMatch(new RegExp(`^Packed ${3 + catchUps} sets of pid \\d+ into stdout`));
    expect(JSON.parse(out)).toMatchObject({ rootPid: pid, sets: [{ dir: into, kind: 'dump' }, ...Array.from({ length: 2 + catchUps }, () => ({ kind: 'pre-dump' }))] });
    ok(await runCli(['unpack', '-i', join(base, 'ckpt.tar'), '-D', join(base, 'reference')]));
    const [piped, reference] = [tree(into), tree(join(base, 'reference'))];
    expect([...piped.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [name, data] of piped) if (name !== 'MANIFEST.json') expect(data.equals(reference.get(name)!), name).toBe(true);
  });

  it('show --archive and restore --archive read the archive in place', async () => {
    const archive = join(base, 'ckpt.tar');
    const shown = JSON.parse(ok(await runCli(['show', '--archive', archive, '--json'])).stdout) as SetSummary;
    const direct = JSON.parse(ok(await runCli(['show', '-D', join(base, '3'), '--json'])).stdout) as SetSummary;
    expect(shown.dir).toBe(archive);
    expect(shown.chain.map((c) => c.dir)).toEqual(Array.from({ length: 2 + catchUps }, (_, i) => `${archive}:parents/${i + 1}`));
    expect(shown.processes).toEqual(direct.processes);
    expect(shown.stats).toEqual(direct.stats);
    await restoreAndVerify(['--archive', archive]);
  });

  it('restore --archive --lazy serves the pages from their frames inside the archive', async () => {
    await restoreAndVerify(['--archive', join(base, 'ckpt.tar'), '--lazy']);
  });

  it('refuses a damaged archive in place and from a stream, naming the entry', async () => {
    const archive = readFileSync(join(base, 'ckpt.tar'));
    const damaged = join(base, 'damaged.tar');
    // Flip a byte inside the root set's pstree.json.
    const a = Archive.open(join(base, 'ckpt.tar'));
    const at = a.locate('pstree.json')!.dataOffset;
    a.close();
    archive[at + 5] ^= 0x20;
    writeFileSync(damaged, archive);
    const inPlace = await runCli(['restore', '--archive', damaged, '--shell-job', '-d']);
    expect(inPlace.code).toBe(1);
    expect(inPlace.stderr).toMatch(new RegExp(`^criu-ts: ${damaged}:pstree\\.json: damaged: its sha256 is [0-9a-f]+, the manifest says [0-9a-f]+\\n$`));
    const unpacked = await runCli(['unpack', '-i', damaged, '-D', join(base, 'never')]);
    expect(unpacked.stderr).toMatch(/^criu-ts: .*damaged\.tar: entry "pstree\.json": damaged: its sha256/);
    expect(readdirSync(base).filter((n) => n.includes('never'))).toEqual([]);
    expect(procState(pid)).toBeNull();
  });
});

describe('the library API', () => {
  it('pre-dumps twice, dumps and restores, reporting statistics and progress', async () => {
    target = await startTarget(fixture('fx_scribble'), ['16']);
    await target.waitFor('ready');
    const api = join(base, 'api');
    mkdirSync(api);
    const seen: Progress[] = [];
    const onProgress = (p: Progress) => seen.push(p);
    const p1 = await preDump({ pid: target.pid, imagesDir: join(api, '1'), onProgress });
    expect(p1).toMatchObject({ pid: target.pid, trackingStarted: true });
    expect(p1.stats.pagesSaved).toBeGreaterThanOrEqual(16 * 256); // the whole 16 MiB region and more
    expect(seen.at(-1)).toEqual({ phase: 'pages', bytesDone: p1.stats.bytesRaw, bytesTotal: expect.any(Number) });
    await new Promise((r) => setTimeout(r, 100));
    const p2 = await preDump({ pid: target.pid, imagesDir: join(api, '2'), prevImagesDir: '../1' });
    expect(p2.trackingStarted).toBe(false);
    expect(p2.stats.pagesWritten).toBeGreaterThan(0);
    expect(p2.stats.pagesSaved).toBeLessThan(p1.stats.pagesSaved!);

    // A cancelled dump stops before the freeze: nothing is saved and the process runs on.
    const cancelled = await dump({ pid: target.pid, imagesDir: join(api, 'x'), signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(cancelled).toMatchObject({ name: 'CriuError', code: 'ECANCELED' });
    expect(procState(target.pid)).not.toBeNull();

    const d = await dump({ pid: target.pid, imagesDir: join(api, '3'), prevImagesDir: '../2', shellJob: true });
    expect(d).toMatchObject({ pid: target.pid, killed: true });
    expect(d.stats.pagesInParent).toBeGreaterThan(0);
    expect(d.stats.frozenMs).toBeGreaterThan(0);
    await target.exited;

    const restoreProgress: Progress[] = [];
    const r = await restore({ imagesDir: join(api, '3'), detach: true, shellJob: true, onProgress: (p) => restoreProgress.push(p) });
    restored.push(r.pid);
    expect(r.pid).toBe(target.pid);
    expect(r.exitCode).toBeUndefined();
    expect(r.stats.pagesBytes).toBeGreaterThanOrEqual(16 << 20);
    expect(r.stats.totalMs).toBeGreaterThan(0);
    expect(restoreProgress.at(-1)).toMatchObject({ phase: 'restore', bytesDone: expect.any(Number) });
    expect(procState(r.pid)).not.toBeNull();

    // Errors are typed: code and cause.
    const again = await restore({ imagesDir: join(api, '3'), detach: true, shellJob: true }).catch((e: unknown) => e);
    expect(again).toMatchObject({ name: 'CriuError', code: 'EEXIST' });
    expect((again as Error).message).toMatch(new RegExp(`PID ${r.pid} is taken`));
    const missing = await restore({ imagesDir: join(api, 'nowhere') }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'EIMAGE' });
  });
});
