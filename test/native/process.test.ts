// Process-level calls: waitpid/waitpidAsync, clone3Stub (with and without set_tid), kill,
// tgkill, prctl, get_robust_list.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native, stubPath } from '../../src/kernel/native.js';
import { readMaps, readStatus } from '../../src/kernel/procfs.js';
import { PR, PTRACE_O, SIG, WNOHANG } from '../../src/kernel/syscalls.js';
import { decodeStatus } from '../../src/kernel/wait.js';
import { Procs, deadPid, errCode, wait } from './util.js';

const procs = new Procs();
afterEach(() => procs.cleanup());

const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));

describe('clone3Stub', () => {
  it('creates the stub as our child, traced by us, stopped before its first instruction', () => {
    const pid = procs.stub();
    expect(pid).toBeGreaterThan(0);
    const st = readStatus(pid);
    expect(st.get('PPid')).toBe(String(process.pid));
    expect(st.get('TracerPid')).toBe(String(process.pid));
    expect(st.get('State')).toMatch(/^t/);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(stubPath);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toBe(stubPath + '\0');
    // Nothing of Node's leaks into it: only fds 0-2 survive.
    expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(['0', '1', '2']);
  });

  it('creates it with a chosen free pid (set_tid)', () => {
    let pid = 0;
    // A free pid high in the range; another process may take it first (EEXIST): try another.
    for (let i = 0; i < 20 && !pid; i++) {
      const want = pidMax - 1000 - Math.floor(Math.random() * (pidMax / 4));
      if (existsSync(`/proc/${want}`)) continue;
      try {
        pid = procs.adopt(native.clone3Stub(want, stubPath, PTRACE_O.EXITKILL));
        expect(pid).toBe(want);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') throw e;
      }
    }
    expect(pid).not.toBe(0);
    expect(readStatus(pid).get('Pid')).toBe(String(pid));
    expect(readStatus(pid).get('TracerPid')).toBe(String(process.pid));
  });

  it('fails: pid in use (EEXIST), above pid_max (EINVAL), no such program (ENOENT), not executable (EACCES)', () => {
    const children = () => readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8');
    const before = children();
    expect(errCode(() => native.clone3Stub(process.pid, stubPath, 0))).toBe('EEXIST');
    expect(errCode(() => native.clone3Stub(pidMax + 1, stubPath, 0))).toBe('EINVAL');
    expect(errCode(() => native.clone3Stub(0, '/nonexistent/stub', PTRACE_O.EXITKILL))).toBe('ENOENT');
    expect(errCode(() => native.clone3Stub(0, '/etc/passwd', PTRACE_O.EXITKILL))).toBe('EACCES');
    expect(errCode(() => native.clone3Stub(0, 42 as unknown as string, 0))).toBe('EINVAL');
    // A failed stub leaves no child behind (the ones whose exec failed were reaped).
    expect(children()).toBe(before);
  });
});

describe('waitpid', () => {
  it('WNOHANG while it runs, then its death', () => {
    const pid = procs.stub();
    native.ptraceDetach(pid);
    expect(native.waitpid(pid, WNOHANG)).toEqual({ pid: 0, status: 0 });
    native.kill(pid, SIG.TERM);
    const r = wait(pid);
    expect(r).toMatchObject({ pid, kind: 'signaled', signal: SIG.TERM });
    expect(errCode(() => native.waitpid(pid))).toBe('ECHILD');
  });

  it('fails with ECHILD for a process that is not our child, EINVAL for bad options', () => {
    expect(errCode(() => native.waitpid(1))).toBe('ECHILD');
    const pid = procs.stub();
    expect(errCode(() => native.waitpid(pid, 0x10000000 | 0x7ff0))).toBe('EINVAL');
  });

  it('waitpidAsync resolves on the pool while the event loop runs', async () => {
    const pid = procs.stub();
    native.ptraceDetach(pid);
    const p = native.waitpidAsync(pid);
    // The event loop is free while the pool thread waits.
    await new Promise((r) => setImmediate(r));
    native.kill(pid, SIG.KILL);
    const r = await p;
    expect(r.pid).toBe(pid);
    expect(decodeStatus(r.status)).toMatchObject({ kind: 'signaled', signal: SIG.KILL });
    await expect(native.waitpidAsync(pid)).rejects.toMatchObject({ code: 'ECHILD', syscall: `waitpid(${pid})` });
  });

  it('waitpidAsync sees ptrace stops too (__WALL)', async () => {
    const pid = procs.stub();
    native.ptraceCont(pid);
    const p = native.waitpidAsync(pid);
    native.ptraceInterrupt(pid);
    expect(decodeStatus((await p).status)).toMatchObject({ kind: 'stopped', signal: SIG.TRAP, event: 128 });
  });
});

describe('signals', () => {
  it('kill: signal 0 probes, SIGKILL kills; ESRCH and EINVAL', () => {
    const pid = procs.stub();
    native.kill(pid, 0);
    expect(errCode(() => native.kill(pid, 65))).toBe('EINVAL');
    native.kill(pid, SIG.KILL);
    expect(wait(pid)).toMatchObject({ kind: 'signaled', signal: SIG.KILL });
    expect(errCode(() => native.kill(pid, 0))).toBe('ESRCH');
  });

  it('tgkill: the thread must belong to the group', () => {
    const pid = procs.stub();
    expect(errCode(() => native.tgkill(pid, process.pid, 0))).toBe('ESRCH');
    expect(errCode(() => native.tgkill(pid, pid, 65))).toBe('EINVAL');
    native.tgkill(pid, pid, SIG.KILL);
    expect(wait(pid)).toMatchObject({ kind: 'signaled', signal: SIG.KILL });
    expect(errCode(() => native.tgkill(pid, pid, 0))).toBe('ESRCH');
  });
});

describe('prctl', () => {
  it('returns results, passes arguments, and fails with the kernel errno', () => {
    expect(native.prctl(PR.GET_DUMPABLE)).toBe(1);
    const PR_SET_TIMERSLACK = 29;
    const PR_GET_TIMERSLACK = 30;
    const before = native.prctl(PR_GET_TIMERSLACK);
    try {
      native.prctl(PR_SET_TIMERSLACK, 123_457);
      expect(native.prctl(PR_GET_TIMERSLACK)).toBe(123_457);
    } finally {
      native.prctl(PR_SET_TIMERSLACK, before);
    }
    // An explicit `undefined` is an absent argument (0), as the optional type says.
    expect(native.prctl(PR.GET_DUMPABLE, undefined, undefined)).toBe(1);
    // PR_GET_CHILD_SUBREAPER writes through arg2: NULL gives EFAULT.
    expect(errCode(() => native.prctl(PR.GET_CHILD_SUBREAPER, 0))).toBe('EFAULT');
    expect(errCode(() => native.prctl(0x7fff_0000))).toBe('EINVAL');
  });
});

describe('get_robust_list', () => {
  it("glibc registers one in a C program; the stub has none; ESRCH when gone", async () => {
    const t = await procs.target('reader');
    await t.waitFor('ready');
    const { head, len } = native.getRobustList(t.pid);
    expect(len).toBe(24); // sizeof(struct robust_list_head)
    const h = Number(head);
    expect(readMaps(t.pid).some((m) => m.start <= h && h + len <= m.end && m.perms.startsWith('rw'))).toBe(true);

    const stub = procs.stub();
    // exec clears the registration (the length field is left as it was).
    expect(native.getRobustList(stub).head).toBe(0n);
    expect(errCode(() => native.getRobustList(deadPid()))).toBe('ESRCH');
  });
});
