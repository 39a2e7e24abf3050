// SyscallCount (perf_event_open on raw_syscalls:sys_enter, filtered by number): it counts the
// chosen syscalls of the process it was opened on, and no others, nor anyone else's.
import { afterEach, describe, expect, it } from 'vitest';
import { SyscallCount } from '../../src/kernel/syscall-count.js';
import { SYS } from '../../src/kernel/syscalls.js';
import { Procs, errCode } from './util.js';

const procs = new Procs();
const counts: SyscallCount[] = [];
afterEach(async () => {
  for (const c of counts.splice(0)) c.close();
  await procs.cleanup();
});

describe('SyscallCount', () => {
  it("counts the process's entries to the chosen syscalls only", async () => {
    const m = await procs.memtool();
    const c = SyscallCount.open(m.pid, [SYS.madvise, SYS.mmap]);
    counts.push(c);
    // 's' hashes memory and answers with write(): neither syscall is counted.
    await m.cmd(`s ${m.buf.toString(16)} 4096`);
    await m.cmd(`s ${m.buf.toString(16)} 8192`);
    expect(c.read()).toBe(0);
    // 'z' is one madvise(MADV_DONTNEED).
    await m.cmd(`z ${m.buf.toString(16)} 4096`);
    expect(c.read()).toBe(1);
    await m.cmd(`z ${m.buf.toString(16)} 4096`);
    expect(c.read()).toBe(2);
    // Another process's are not its.
    const other = await procs.memtool();
    await other.cmd(`z ${other.buf.toString(16)} 4096`);
    expect(c.read()).toBe(2);
  });

  it('refuses a process that does not exist, with the errno', () => {
    const e = errCode(() => SyscallCount.open(2 ** 22 + 1, [SYS.madvise]));
    expect(e).toBe('ESRCH');
  });
});
