// The dump reads the layout from /proc/PID/maps when it freezes the process and each VMA's
// VmFlags from smaps later, on the pool, while it collects the rest (see dump.ts): the image
// must still carry exactly the flags the process had, and nothing of ours may stay mapped.
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { coreFile, type Core } from '../../src/images/core.js';
import { mmFile } from '../../src/images/mm.js';
import { execFileSync } from 'node:child_process';
import { readMaps, readSmaps, readSmapsAsync } from '../../src/kernel/procfs.js';
import { removeDir, runCli, tempDir } from '../helpers/cli.js';
import { fixture } from '../helpers/fixtures.js';
import { procState, waitAsleep } from '../helpers/process-state.js';
import { startTarget, type Target } from '../helpers/target.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** start-end -> VmFlags, as smaps shows them now. */
const flagsNow = (pid: number) => new Map(readSmaps(pid).map((m) => [`${m.start.toString(16)}-${m.end.toString(16)}`, (m.vmFlags ?? []).join(' ')]));

/** start-end -> VmFlags, as the set's mm file has them. */
function flagsSaved(dir: string, pid: number): Map<string, string> {
  const mm = JSON.parse(readFileSync(join(dir, mmFile(pid)), 'utf8')) as { vmas: Array<{ start: string; end: string; vmFlags: string[]; growsDown: boolean }> };
  return new Map(mm.vmas.map((v) => [`${BigInt(v.start).toString(16)}-${BigInt(v.end).toString(16)}`, v.vmFlags.join(' ')]));
}

/** Reads (or with `data`, writes) the victim's memory at `at` through /proc/PID/mem, whole. */
function mem(pid: number, at: number, buf: Buffer, data = false): Buffer {
  const fd = openSync(`/proc/${pid}/mem`, data ? 'r+' : 'r');
  try {
    expect(data ? writeSync(fd, buf, 0, buf.length, at) : readSync(fd, buf, 0, buf.length, at)).toBe(buf.length);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/**
 * The victim's [stack] mapping, after filling what lies below its stack pointer (less a
 * margin) with a pattern: the dump borrows scratch memory there, and a byte it left changed
 * must show (its syscalls' outputs could otherwise happen to be the zeros of untouched pages).
 * The victim is asleep in a syscall: /proc/PID/syscall gives its stack pointer.
 */
function markedStack(pid: number): { start: number; end: number } {
  const m = readMaps(pid).find((x) => x.name === '[stack]')!;
  const fields = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim().split(' ');
  const sp = Number(BigInt(fields[fields.length - 2]!));
  expect(sp > m.start && sp < m.end).toBe(true);
  mem(pid, m.start, Buffer.alloc(sp - 512 - m.start, 0xa5), true);
  return m;
}

const bytesAt = (pid: number, r: { start: number; end: number }) => mem(pid, r.start, Buffer.alloc(r.end - r.start));

async function victim(): Promise<Target> {
  const dir = tempDir('criu-ts-layout-');
  cleanups.push(() => removeDir(dir));
  const t = await startTarget(fixture('fx_memory'), ['4', dir]);
  cleanups.push(() => t.stop());
  await t.waitFor(/^ready$/);
  await waitAsleep(t.pid);
  return t;
}

const savedCore = (dir: string, pid: number) => JSON.parse(readFileSync(join(dir, coreFile(pid)), 'utf8')) as Core;

/** A fresh images directory, removed after the test. */
function imagesDir(): string {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  return dir;
}

/** dump --leave-running -v3 of pid into dir, which must succeed; its stderr once pid sleeps again untraced. */
async function dumpLeaveRunning(pid: number, dir: string, wake = true): Promise<string> {
  const d = await runCli(['dump', '-t', String(pid), '-D', dir, '--shell-job', '--leave-running', '-v3']);
  expect(d.code, d.stderr).toBe(0);
  if (wake) await waitAsleep(pid);
  return d.stderr;
}

/** python3 running `lines`, then waiting on its stdin; resolves once it printed a `ready` line. */
async function python(lines: string[], ready: RegExp): Promise<{ t: Target; line: string }> {
  const t = await startTarget('python3', ['-c', [...lines, 'sys.stdin.read()'].join('\n')]);
  cleanups.push(() => t.stop());
  return { t, line: await t.waitFor(ready) };
}

describe('VmFlags in the image, and the layout after the dump', () => {
  it('a dump --leave-running saves every VMA with the flags smaps shows, and leaves the maps as they were', async () => {
    const t = await victim();
    const images = imagesDir();
    const maps = readFileSync(`/proc/${t.pid}/maps`, 'utf8');
    const before = flagsNow(t.pid);
    const stackVma = markedStack(t.pid);
    const stack = bytesAt(t.pid, stackVma);
    expect([...before.values()].some((f) => / hg( |$)/.test(f) || / mr /.test(f))).toBe(true); // flags worth checking
    const stderr = await dumpLeaveRunning(t.pid, images);
    expect(stderr).toMatch(/scratch page borrowed from its stack/);
    // Asleep: no syscall between the early smaps read and the freeze.
    expect(stderr).toMatch(new RegExp(`VmFlags \\(pid ${t.pid}\\): read before the freeze`));
    expect(flagsSaved(images, t.pid)).toEqual(before);
    expect(readFileSync(`/proc/${t.pid}/maps`, 'utf8')).toBe(maps); // no scratch page left behind
    expect(bytesAt(t.pid, stackVma).equals(stack)).toBe(true); // and the borrowed one is as it was
    t.kill('SIGTERM');
    expect(await t.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });

  it('a process whose stack pointer is outside [stack] gets a scratch page mapped and unmapped instead', async () => {
    const t = await startTarget(fixture('fx_blocked'), ['own-stack']);
    cleanups.push(() => t.stop());
    await t.waitFor(/^ready$/);
    await waitAsleep(t.pid);
    const images = imagesDir();
    const maps = readFileSync(`/proc/${t.pid}/maps`, 'utf8');
    const before = flagsNow(t.pid);
    expect(await dumpLeaveRunning(t.pid, images)).toMatch(/scratch page mapped/);
    expect(flagsSaved(images, t.pid)).toEqual(before);
    expect(readFileSync(`/proc/${t.pid}/maps`, 'utf8')).toBe(maps);
    t.kill('SIGTERM');
    expect(await t.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });

  it('the collection runs through a parasite, and where none can be mapped steps each syscall, saving the same state', async () => {
    const t = await victim();
    const images = imagesDir();
    const maps = readFileSync(`/proc/${t.pid}/maps`, 'utf8');
    const dumpTo = async (name: string) => {
      const stderr = await dumpLeaveRunning(t.pid, join(images, name));
      return { stderr, core: savedCore(join(images, name), t.pid) };
    };
    const a = await dumpTo('parasite');
    expect(a.stderr).toMatch(/parasite at 0x/);
    expect(readFileSync(`/proc/${t.pid}/maps`, 'utf8')).toBe(maps); // gone again
    // An address-space limit at its present size: the parasite's mmap fails (ENOMEM).
    const vmKiB = Number(/VmSize:\s+(\d+)/.exec(readFileSync(`/proc/${t.pid}/status`, 'utf8'))![1]);
    const hardAs = readFileSync(`/proc/${t.pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max address space'))!.slice(47).trim().split(/\s+/)[0]!;
    execFileSync('prlimit', ['--pid', String(t.pid), `--as=${vmKiB * 1024}:${hardAs}`]);
    let b;
    try {
      b = await dumpTo('stepped');
    } finally {
      execFileSync('prlimit', ['--pid', String(t.pid), `--as=${hardAs}:${hardAs}`]);
    }
    expect(b.stderr).toMatch(/no parasite: .*ENOMEM/);
    const RLIMIT_AS = 9;
    const state = (c: Core) => ({
      ...c.process!,
      rlimits: c.process!.rlimits.filter((r) => r.resource !== RLIMIT_AS),
      sigaltstack: c.sigaltstack,
      tidAddress: c.tidAddress,
    });
    expect(state(b.core)).toEqual(state(a.core));
    expect(a.core.process!.sigactions.length).toBeGreaterThan(0);
    t.kill('SIGTERM');
    expect(await t.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });

  it('a stopped process (SIGSTOP) stays stopped after a --leave-running dump, and continues on SIGCONT', async () => {
    // The parasite continues the thread (PTRACE_CONT) where a step did not: the group stop
    // must survive it.
    const t = await victim();
    const images = imagesDir();
    t.kill('SIGSTOP');
    const stopped = async () => {
      for (let i = 0; i < 200 && procState(t.pid)?.state !== 'T'; i++) await new Promise((r) => setTimeout(r, 5));
      return procState(t.pid);
    };
    expect((await stopped())?.state).toBe('T');
    expect(await dumpLeaveRunning(t.pid, images, false)).toMatch(/parasite at 0x/); // stays stopped: no waiting for sleep
    expect(savedCore(images, t.pid).process!.stoppedBy).toBe(19); // SIGSTOP, recorded
    await new Promise((r) => setTimeout(r, 100)); // time to run, were it let go
    expect(await stopped()).toMatchObject({ state: 'T', tracerPid: 0 });
    t.kill('SIGCONT');
    await waitAsleep(t.pid);
    t.kill('SIGTERM');
    expect(await t.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });

  it('the final dump of a tracked chain does too (its scan tells registration by EPERM, not by VmFlags)', async () => {
    const t = await victim();
    const images = imagesDir();
    const p = await runCli(['pre-dump', '-t', String(t.pid), '-D', join(images, '1')]);
    expect(p.code, p.stderr).toBe(0);
    await waitAsleep(t.pid);
    const before = flagsNow(t.pid); // tracked: uw on every private VMA
    expect([...before.values()].filter((f) => / uw( |$)/.test(f)).length).toBeGreaterThan(3);
    const d = await runCli(['dump', '-t', String(t.pid), '-D', join(images, '2'), '--prev-images-dir', '../1', '--track-mem', '--shell-job', '--leave-running', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).not.toMatch(/registration|Warn/);
    // Asleep since the pass: only what waking from the pass's stop wrote (its stack), not the
    // whole memory that an unregistered-looking VMA would have cost.
    const { stats } = JSON.parse(d.stdout) as { stats: { pagesWritten: number; pagesSaved: number } };
    expect(stats.pagesSaved).toBeLessThan(16);
    expect(stats.pagesSaved).toBe(stats.pagesWritten);
    expect(flagsSaved(join(images, '2'), t.pid)).toEqual(before);
    t.kill('SIGTERM');
    expect(await t.waitFor(/^(PASS|FAIL)/)).toBe('PASS');
  });

  it('a process that maps and advises all the time has its VmFlags read again while frozen, and saved as they were', async () => {
    // A stable VMA with MADV_DONTFORK ("dc"), and a thread that maps, advises and unmaps a
    // page over and over: the count of such syscalls between the early read and the freeze
    // is never 0.
    const py = [
      'import mmap, ctypes, sys, threading',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]',
      'm = mmap.mmap(-1, 64 * 4096)',
      'a = ctypes.addressof(ctypes.c_char.from_buffer(m))',
      'assert libc.madvise(a, 64 * 4096, 10) == 0',
      'def churn():',
      '    while True:',
      '        x = mmap.mmap(-1, 4096)',
      '        b = ctypes.c_char.from_buffer(x)',
      '        libc.madvise(ctypes.addressof(b), 4096, 10)',
      '        del b',
      '        x.close()',
      'threading.Thread(target=churn, daemon=True).start()',
      'print("at %x" % a, flush=True)',
    ];
    const { t, line } = await python(py, /^at /);
    const at = parseInt(line.slice(3), 16);
    const images = imagesDir();
    const stderr = await dumpLeaveRunning(t.pid, images, false);
    expect(stderr).toMatch(new RegExp(`VmFlags \\(pid ${t.pid}\\): read again while frozen \\(\\d+ syscall`));
    const saved = [...flagsSaved(images, t.pid)].find(([k]) => parseInt(k.split('-')[0]!, 16) === at);
    expect(saved?.[1].split(' ')).toContain('dc');
  });

  it('readSmapsAsync reads an smaps larger than its first buffer (1 MiB) whole', async () => {
    // 3000 VMAs (every other page read-only): about 3 MB of smaps text.
    const py = [
      'import mmap, ctypes, sys',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'm = mmap.mmap(-1, 6000 * 4096)',
      'a = ctypes.addressof(ctypes.c_char.from_buffer(m))',
      'for i in range(0, 6000, 2): libc.mprotect(ctypes.c_void_p(a + i * 4096), 4096, 1)',
      'print("ready", flush=True)',
    ];
    const { t } = await python(py, /^ready$/);
    const sync = readSmaps(t.pid);
    expect(sync.length).toBeGreaterThan(3000);
    expect(readFileSync(`/proc/${t.pid}/smaps`, 'utf8').length).toBeGreaterThan(2 << 20);
    expect(await readSmapsAsync(t.pid)).toEqual(sync);
  });
});
