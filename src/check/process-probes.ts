// Probes for what dump and restore do to processes and threads: ptrace and injection,
// pidfd_getfd, clone3 with set_tid, PR_SET_MM_MAP, rseq, and counting a process's syscalls.
import { closeSync, fstatSync, readFileSync } from 'node:fs';
import { native, hasCode } from '../kernel/native.js';
import { waitInterrupted } from '../kernel/ptrace.js';
import { readStat } from '../kernel/procfs.js';
import { readRemote, writeRemote } from '../kernel/remote.js';
import { SyscallCount } from '../kernel/syscall-count.js';
import { O, PAGE_SIZE, PR, PR_SET_MM, PTRACE_O, SYS } from '../kernel/syscalls.js';
import { killAndReap, ProbeMismatch, withStub, type Probe } from './probe.js';

export const ptraceProbe: Probe = {
  name: 'ptrace',
  title: 'PTRACE_SEIZE + PTRACE_INTERRUPT of a child, syscall injection, registers left as found',
  required: true,
  affects: 'dump, pre-dump, restore',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) => {
      // withStub has stopped it once already; do it again here so that this probe shows
      // the whole cycle: run, PTRACE_INTERRUPT, event stop, inject.
      native.ptraceCont(pid, 0);
      native.ptraceInterrupt(pid);
      waitInterrupted(pid);
      const before = native.ptraceGetRegs(pid);
      const got = remote.call(SYS.getpid, 'getpid');
      if (got !== pid) throw new ProbeMismatch(`injected getpid returned ${got}, expected ${pid}`);
      const after = native.ptraceGetRegs(pid);
      if (!before.equals(after)) throw new ProbeMismatch('registers differ after an injected syscall');
      return 'injected getpid in a running stub; registers unchanged';
    }),
};

export const pidfdGetfdProbe: Probe = {
  name: 'pidfd-getfd',
  title: 'pidfd_open + pidfd_getfd of a pipe made inside a child',
  required: true,
  affects: 'dump, pre-dump, restore --lazy',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) =>
      remote.withScratch(PAGE_SIZE, (addr) => {
        remote.call(SYS.pipe2, 'pipe2', addr, O.CLOEXEC);
        const fds = readRemote(pid, addr, 8);
        const pidfd = native.pidfdOpen(pid);
        try {
          const fd = native.pidfdGetfd(pidfd, fds.readInt32LE(0));
          try {
            if (!fstatSync(fd).isFIFO()) throw new ProbeMismatch('pidfd_getfd gave an fd that is not the pipe');
          } finally {
            closeSync(fd);
          }
        } finally {
          closeSync(pidfd);
        }
        return 'took a pipe end out of a stub';
      }),
    ),
};

/** /proc/sys/kernel/pid_max: set_tid beyond it is EINVAL, not a missing feature. */
function pidMax(): number {
  return Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
}

export const clone3SetTidProbe: Probe = {
  name: 'clone3-set-tid',
  title: 'clone3 with set_tid: a child with a chosen PID',
  required: true,
  affects: 'restore',
  needs: ['CHECKPOINT_RESTORE', 'SYS_ADMIN'],
  run: (ctx) => {
    // Ask for a PID that was just freed, exactly what a restore does: the kernel hands PIDs
    // out cyclically, so a fresh one is not taken again at once. If another process grabs it
    // anyway (EEXIST), try again with a new one.
    for (let attempt = 0; ; attempt++) {
      const want = native.clone3Stub(0, ctx.stubPath, PTRACE_O.EXITKILL);
      killAndReap(want);
      let pid: number;
      try {
        pid = native.clone3Stub(want, ctx.stubPath, PTRACE_O.EXITKILL);
      } catch (e) {
        if (hasCode(e, 'EEXIST') && attempt < 3) continue;
        if (hasCode(e, 'EINVAL') && want > pidMax()) throw new ProbeMismatch(`PID ${want} is above pid_max`);
        throw e;
      }
      killAndReap(pid);
      if (pid !== want) throw new ProbeMismatch(`asked for PID ${want}, got ${pid}`);
      return `recreated PID ${want}`;
    }
  },
};

/** sizeof(struct prctl_mm_map): 11 addresses and the auxv pointer (u64), auxv_size, exe_fd (u32). */
const PRCTL_MM_MAP_SIZE = 12 * 8 + 4 + 4;

export const prctlMmMapProbe: Probe = {
  name: 'prctl-mm-map',
  title: 'PR_SET_MM_MAP inside a child, with its own current values',
  required: true,
  affects: 'restore',
  needs: ['CHECKPOINT_RESTORE'],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) =>
      remote.withScratch(PAGE_SIZE, (addr) => {
        // The kernel and we must agree on the struct first.
        remote.call(SYS.prctl, 'prctl(PR_SET_MM_MAP_SIZE)', PR.SET_MM, PR_SET_MM.MAP_SIZE, addr, 0, 0);
        const size = readRemote(pid, addr, 4).readUInt32LE(0);
        if (size !== PRCTL_MM_MAP_SIZE) throw new ProbeMismatch(`kernel's prctl_mm_map is ${size} bytes, expected ${PRCTL_MM_MAP_SIZE}`);

        // Restore sets every field at once; here we set each to what the stub has now, so
        // the call is real and changes nothing. exe_fd -1 leaves the exe link alone (the
        // stub's own file is still mapped, and the kernel refuses to replace it then).
        const stat = readStat(pid).map((f) => BigInt(/^\d+$/.test(f) ? f : 0));
        const brk = BigInt(remote.call(SYS.brk, 'brk', 0));
        const auxv = readFileSync(`/proc/${pid}/auxv`);
        const auxvAddr = addr + 256;
        const map = Buffer.alloc(PRCTL_MM_MAP_SIZE);
        const fields = [
          stat[26]!, // start_code
          stat[27]!, // end_code
          stat[45]!, // start_data
          stat[46]!, // end_data
          stat[47]!, // start_brk
          brk,
          stat[28]!, // start_stack
          stat[48]!, // arg_start
          stat[49]!, // arg_end
          stat[50]!, // env_start
          stat[51]!, // env_end
          BigInt(auxvAddr),
        ];
        fields.forEach((v, i) => map.writeBigUInt64LE(v, i * 8));
        map.writeUInt32LE(auxv.length, 12 * 8);
        map.writeInt32LE(-1, 12 * 8 + 4);
        writeRemote(pid, addr, map);
        writeRemote(pid, auxvAddr, auxv);
        remote.call(SYS.prctl, 'prctl(PR_SET_MM_MAP)', PR.SET_MM, PR_SET_MM.MAP, addr, PRCTL_MM_MAP_SIZE, 0);
        return 'set a stub\'s mm fields and auxv';
      }),
    ),
};

/** glibc's rseq signature on x86 (the bytes before every abort handler). */
const RSEQ_SIG = 0x53053053;
/** The original struct rseq size: what every kernel since 4.18 accepts. */
const RSEQ_LEN = 32;
const RSEQ_FLAG_UNREGISTER = 1;

export const rseqProbe: Probe = {
  name: 'rseq',
  title: 'rseq registered in a child, read back with PTRACE_GET_RSEQ_CONFIGURATION, unregistered',
  required: false,
  affects: 'saving and restoring the rseq area of threads (every glibc 2.35+ program has one)',
  needs: ['SYS_PTRACE'],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) =>
      remote.withScratch(PAGE_SIZE, (addr) => {
        // The static stub has no rseq of its own: register one at the scratch page, as a
        // restore does for each thread, and read it back the way a dump does.
        remote.call(SYS.rseq, 'rseq', addr, RSEQ_LEN, 0, RSEQ_SIG);
        try {
          const conf = native.ptraceGetRseqConfiguration(pid);
          if (conf.rseqAbiPointer !== BigInt(addr) || conf.rseqAbiSize !== RSEQ_LEN || conf.signature >>> 0 !== RSEQ_SIG) {
            throw new ProbeMismatch(
              `PTRACE_GET_RSEQ_CONFIGURATION reports 0x${conf.rseqAbiPointer.toString(16)}/${conf.rseqAbiSize}/0x${(conf.signature >>> 0).toString(16)}, ` +
                `expected 0x${addr.toString(16)}/${RSEQ_LEN}/0x${RSEQ_SIG.toString(16)}`,
            );
          }
        } finally {
          // Unregister before the scratch page goes: the kernel writes the area on the way
          // back to user space, and an unmapped area would kill the stub with SIGSEGV.
          remote.call(SYS.rseq, 'rseq(unregister)', addr, RSEQ_LEN, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
        }
        return 'registered, read back and unregistered an rseq area in a stub';
      }),
    ),
};

export const syscallCountProbe: Probe = {
  name: 'syscall-count',
  title: "counting a child's madvise calls from outside (perf event on raw_syscalls:sys_enter, filtered)",
  required: false,
  affects: 'dump: VmFlags (smaps) read before the freeze instead of while frozen',
  needs: ['SYS_ADMIN'],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) => {
      const c = SyscallCount.open(pid, [SYS.madvise]);
      try {
        remote.call(SYS.getpid, 'getpid');
        remote.call(SYS.madvise, 'madvise', 0, 0, 0); // an empty range: 0, and counted
        const n = c.read();
        if (n !== 1) throw new ProbeMismatch(`counted ${n} madvise calls, expected 1 (and no getpid)`);
      } finally {
        c.close();
      }
      return 'an injected madvise counted, an injected getpid not';
    }),
};
