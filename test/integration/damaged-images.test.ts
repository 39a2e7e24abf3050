// Damaged, foreign, incomplete and unsafe image sets are refused with one line that names the
// file and the problem, and nothing is restored: no process, no stub, no zombie of the PID.
//
// One real set is made once (fx_files: every kind of file, a ghost for its deleted-but-open
// fd); each case damages a fresh copy of it the way a disk, a copy or a person would, then
// runs `criu-ts restore` and `criu-ts show` on it.
import { cpSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodePagemap, encodePagemap, HEADER_SIZE, RangeKind } from '../../src/images/pagemap.js';
import { killAndReap, removeDir, runCli, startCli, tempDir, type CliResult } from '../helpers/cli.js';
import { fixture } from '../helpers/fixtures.js';
import { lineIn, procState, reapIfOurs, waitAsleep } from '../helpers/process-state.js';
import { startTarget } from '../helpers/target.js';

let work = '';
let pristine = '';
let pid = 0;
let copies = 0;

beforeAll(async () => {
  work = tempDir('criu-ts-damaged-');
  const victimDir = join(work, 'victim');
  mkdirSync(victimDir);
  pristine = join(work, 'pristine');
  const t = await startTarget(fixture('fx_files'), [victimDir]);
  try {
    await t.waitFor(/^ready$/);
    const d = await runCli(['dump', '-t', String(t.pid), '-D', pristine, '--shell-job']);
    if (d.code !== 0) throw new Error(`dump failed (${d.code}): ${d.stderr}`);
    await t.exited;
    pid = t.pid;
  } finally {
    await t.stop();
  }
});

afterAll(() => {
  if (pid) killAndReap(pid);
  if (work) removeDir(work);
});

// A case that wrongly restored something must not leave it to the next one.
afterEach(() => {
  if (pid && procState(pid)) killAndReap(pid);
});

/** A fresh copy of the set to damage. */
function copy(): string {
  const dir = join(work, `copy-${++copies}`);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

const f = {
  inventory: () => 'inventory.json',
  pstree: () => 'pstree.json',
  core: () => `core-${pid}.json`,
  mm: () => `mm-${pid}.json`,
  files: () => `files-${pid}.json`,
  pagemap: () => `pagemap-${pid}.bin`,
  pages: () => `pages-${pid}.zst`,
  ghost: () => {
    const ghosts = readdirSync(pristine).filter((n) => /^ghost-\d+-\d+\.zst$/.test(n));
    if (ghosts.length !== 1) throw new Error(`expected one ghost file in the set, found ${ghosts.join(', ') || 'none'}`);
    return ghosts[0]!;
  },
};

function editJson(dir: string, name: string, edit: (v: Record<string, any>) => void): void {
  const path = join(dir, name);
  const v = JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
  edit(v);
  writeFileSync(path, JSON.stringify(v, null, 1) + '\n');
}

function flipByte(path: string, at: number): void {
  const buf = readFileSync(path);
  buf[at] = buf[at]! ^ 0xff;
  writeFileSync(path, buf);
}

/** Re-encodes the page index after an edit: its checksums are right, only its content is wrong. */
function editIndex(dir: string, edit: (ix: ReturnType<typeof decodePagemap>) => void): void {
  const path = join(dir, f.pagemap());
  const ix = decodePagemap(readFileSync(path), path);
  edit(ix);
  writeFileSync(path, encodePagemap(ix));
}

/** Moves an image file out of the set and leaves a symlink to it in its place. */
function symlinkOut(dir: string, name: string): void {
  const away = `${dir}-${name}`;
  renameSync(join(dir, name), away);
  symlinkSync(away, join(dir, name));
}

interface Damage {
  name: string;
  /** The image file the error must name. */
  file: () => string;
  damage(dir: string): void;
  /** Words of the problem in the message. */
  problem: RegExp;
  /**
   * show reads the metadata and the page index but no page data: does it see this damage?
   * If not, it must still not crash.
   */
  showSees: boolean;
}

const damages: Damage[] = [
  // Page data.
  {
    name: 'pages file truncated',
    file: f.pages,
    damage: (dir) => truncateSync(join(dir, f.pages()), Math.floor(statSync(join(dir, f.pages())).size / 2)),
    problem: /truncated: \d+ bytes, the index expects \d+/,
    showSees: true,
  },
  {
    name: 'one byte flipped inside a frame of the pages file',
    file: f.pages,
    damage: (dir) => {
      const path = join(dir, f.pagemap());
      const ix = decodePagemap(readFileSync(path), path);
      const frame = ix.frames[ix.frames.length - 1]!;
      flipByte(join(dir, f.pages()), frame.fileOff + Math.floor(frame.compSize / 2));
    },
    problem: /frame \d+ at offset \d+: checksum mismatch \(damaged\)/,
    showSees: false,
  },
  // Missing files, one of each kind.
  ...(['inventory', 'pstree', 'core', 'mm', 'files', 'pagemap', 'pages', 'ghost'] as const).map(
    (kind): Damage => ({
      name: `${kind} file missing`,
      file: f[kind],
      damage: (dir) => unlinkSync(join(dir, f[kind]())),
      problem: kind === 'inventory' ? /missing: not an image set, or a dump that did not finish/ : /missing/,
      showSees: kind !== 'ghost',
    }),
  ),
  // Metadata of the wrong shape.
  {
    name: 'core: regs.rip a number',
    file: f.core,
    damage: (dir) => editJson(dir, f.core(), (c) => void (c.regs.rip = Number(BigInt(c.regs.rip)))),
    problem: /regs\.rip: expected a hex string/,
    showSees: true,
  },
  {
    name: 'core: cut short (not valid JSON)',
    file: f.core,
    damage: (dir) => truncateSync(join(dir, f.core()), Math.floor(statSync(join(dir, f.core())).size / 2)),
    problem: /not valid JSON/,
    showSees: true,
  },
  {
    name: 'mm: vmas[0].prot a string',
    file: f.mm,
    damage: (dir) => editJson(dir, f.mm(), (m) => void (m.vmas[0].prot = 'r--')),
    problem: /vmas\[0\]\.prot: expected a non-negative integer/,
    showSees: true,
  },
  {
    name: 'mm: a field this format does not have',
    file: f.mm,
    damage: (dir) => editJson(dir, f.mm(), (m) => void (m.mmFields.startHeap = m.mmFields.startBrk)),
    problem: /mmFields\.startHeap: unknown field/,
    showSees: true,
  },
  {
    name: 'files: fds[1].fd a string',
    file: f.files,
    damage: (dir) => editJson(dir, f.files(), (x) => void (x.fds[1].fd = String(x.fds[1].fd))),
    problem: /fds\[1\]\.fd: expected a non-negative integer/,
    showSees: true,
  },
  {
    name: 'pstree: threads not an array',
    file: f.pstree,
    damage: (dir) => editJson(dir, f.pstree(), (t) => void (t.processes[0].threads = pid)),
    problem: /processes\[0\]\.threads: expected an array/,
    showSees: true,
  },
  {
    name: 'inventory: rootPid a string',
    file: f.inventory,
    damage: (dir) => editJson(dir, f.inventory(), (i) => void (i.rootPid = String(i.rootPid))),
    problem: /rootPid: expected a non-negative integer/,
    showSees: true,
  },
  // Versions and foreign sets.
  {
    name: 'inventory: a newer format version',
    file: f.inventory,
    damage: (dir) => editJson(dir, f.inventory(), (i) => void (i.version = 2)),
    problem: /image format version 2 is newer than this tool understands \(1\); upgrade criu-ts/,
    showSees: true,
  },
  {
    name: 'inventory: an older, unknown format version',
    file: f.inventory,
    damage: (dir) => editJson(dir, f.inventory(), (i) => void (i.version = 0)),
    problem: /image format version 0 is not supported/,
    showSees: true,
  },
  {
    name: 'inventory: foreign (no format field)',
    file: f.inventory,
    damage: (dir) => editJson(dir, f.inventory(), (i) => void delete i.format),
    problem: /not a criu-ts image set \(format field missing or foreign\)/,
    showSees: true,
  },
  // The page index.
  {
    name: 'index: a range reaching past the end of the page data (checksums fixed)',
    file: f.pagemap,
    damage: (dir) =>
      editIndex(dir, (ix) => {
        const last = ix.ranges.filter((r) => r.kind === RangeKind.Data).at(-1)!;
        last.nrPages += 16;
      }),
    problem: /range \d+: points past the end of the page data \(\d+ > \d+\)/,
    showSees: true,
  },
  {
    name: 'index: frames reaching past the end of the pages file (checksums fixed)',
    file: f.pages,
    damage: (dir) =>
      editIndex(dir, (ix) => {
        ix.frames.at(-1)!.compSize += 4096;
        ix.pagesBytes += 4096;
      }),
    problem: /truncated: \d+ bytes, the index expects \d+/,
    showSees: true,
  },
  {
    name: 'index: header damaged (frame size byte flipped)',
    file: f.pagemap,
    damage: (dir) => flipByte(join(dir, f.pagemap()), 17),
    problem: /header checksum mismatch \(damaged\)/,
    showSees: true,
  },
  {
    name: 'index: a range entry damaged (page count byte flipped)',
    file: f.pagemap,
    damage: (dir) => flipByte(join(dir, f.pagemap()), HEADER_SIZE + 8),
    problem: /checksum mismatch in the ranges or frames \(damaged\)/,
    showSees: true,
  },
  {
    name: 'index: cut short',
    file: f.pagemap,
    damage: (dir) => truncateSync(join(dir, f.pagemap()), statSync(join(dir, f.pagemap())).size - 10),
    problem: /truncated: \d+ bytes, the header promises \d+/,
    showSees: true,
  },
  // Symlinks are never followed, even to an intact copy of the file.
  ...(['inventory', 'core', 'pages'] as const).map(
    (kind): Damage => ({
      name: `${kind} file replaced by a symlink`,
      file: f[kind],
      damage: (dir) => symlinkOut(dir, f[kind]()),
      problem: /is a symlink \(refused\)/,
      showSees: true,
    }),
  ),
];

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Exit 1, nothing on stdout, and exactly one line on stderr: `criu-ts: ...<path>: ...<problem>`. */
function expectRefusal(r: CliResult, path: string, problem: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^criu-ts: (?:\\w+ \\(pid ${pid}\\): )?${escape(path)}: .*${problem.source}`));
  expect(r.signal).toBeNull();
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
}

describe('restore and show refuse a damaged image set', () => {
  it('has the image files that the cases damage', () => {
    const names = readdirSync(pristine);
    for (const kind of Object.keys(f) as Array<keyof typeof f>) expect(names).toContain(f[kind]());
    // More than one frame, so "the last frame" is not the only one.
    const ix = decodePagemap(readFileSync(join(pristine, f.pagemap())), f.pagemap());
    expect(ix.frames.length).toBeGreaterThan(1);
  });

  for (const d of damages) {
    it(d.name, async () => {
      const dir = copy();
      d.damage(dir);
      const path = join(dir, d.file());
      const [restored, shown] = await Promise.all([
        runCli(['restore', '-D', dir, '--shell-job', '-d']),
        runCli(['show', '-D', dir]),
      ]);
      expectRefusal(restored, path, d.problem);
      // Nothing restored: no process, no stub, no zombie (ours or anyone's) with the PID.
      expect(procState(pid)).toBeNull();
      if (d.showSees) {
        expectRefusal(shown, path, d.problem);
      } else {
        // show does not read page data or ghosts: it describes the set and does not crash.
        expect(shown.stderr).toMatch(new RegExp(`^${escape(dir)}: dump \\(format v1\\) of pid ${pid}`));
        expect(shown.stderr).not.toMatch(/^criu-ts: /m);
        expect([shown.code, shown.signal]).toEqual([0, null]);
      }
    });
  }

  it('show --json on a damaged set: the same one line, no JSON', async () => {
    const dir = copy();
    editJson(dir, f.mm(), (m) => void (m.vmas[0].prot = 'r--'));
    const r = await runCli(['show', '-D', dir, '--json']);
    expectRefusal(r, join(dir, f.mm()), /vmas\[0\]\.prot: expected a non-negative integer/);
  });

  it('a set whose dump never finished (no inventory) is refused as incomplete', async () => {
    const dir = copy();
    unlinkSync(join(dir, f.inventory()));
    unlinkSync(join(dir, f.pagemap()));
    const r = await runCli(['restore', '-D', dir, '--shell-job', '-d']);
    expectRefusal(r, join(dir, f.inventory()), /missing: not an image set, or a dump that did not finish/);
    expect(procState(pid)).toBeNull();
  });
});

describe('restore refuses a PID that is taken', () => {
  it('names the PID and its owner, and leaves the owner alone', async () => {
    const dir = copy();
    // The intact set restores (so the cases above failed for their damage alone)...
    const first = startCli(['restore', '-D', dir, '--shell-job', '-d']);
    const [code, signal] = await first.exited;
    expect([code, signal]).toEqual([0, null]);
    expect(first.err).toEqual([expect.stringMatching(new RegExp(`^Restored pid ${pid} in [\\d.]+ ms\\.$`))]);
    const st = await waitAsleep(pid);
    expect(st.ppid).toBe(process.pid); // -d: the restorer is gone; we are its subreaper
    // ... and a second restore of it is refused, before it touches anything.
    const second = await runCli(['restore', '-D', dir, '--shell-job', '-d']);
    const lines = second.stderr.split('\n').filter((l) => l !== '');
    expect(lines, second.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^criu-ts: stub \\(pid ${pid}\\): PID ${pid} is taken by fx_files \\(state S`));
    expect([second.code, second.signal]).toEqual([1, null]);
    // The owner (the first restore) still runs, and its state is intact.
    await waitAsleep(pid);
    process.kill(pid, 'SIGTERM');
    expect(await lineIn(first.out, /^(PASS|FAIL)/)).toBe('PASS');
    expect(await reapIfOurs(pid)).toEqual({ kind: 'exited', code: 0 });
    expect(procState(pid)).toBeNull();
  });
});
