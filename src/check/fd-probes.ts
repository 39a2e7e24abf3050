// Probes for the fd kinds and timers (issue 7): what the dump of unix sockets and the restore
// of POSIX timers rely on beyond the basics.
import { closeSync, readlinkSync } from 'node:fs';
import { PAGE_SIZE, SYS } from '../kernel/syscalls.js';
import { native } from '../kernel/native.js';
import { readRemote } from '../kernel/remote.js';
import { unixDiag } from '../kernel/sock-diag.js';
import { AF, SOCK } from '../kernel/sockets.js';
import { ProbeMismatch, withStub, type Probe } from './probe.js';

export const unixDiagProbe: Probe = {
  name: 'unix-diag',
  title: 'a unix socket of ours found through NETLINK_SOCK_DIAG (unix_diag)',
  required: false,
  affects: 'dumping processes that hold unix sockets (peers, backlogs, pending connections come from unix_diag)',
  needs: [],
  run() {
    const fd = native.socket(AF.UNIX, SOCK.DGRAM | SOCK.CLOEXEC, 0);
    try {
      const ino = Number(/\d+/.exec(readlinkSync(`/proc/self/fd/${fd}`))![0]);
      if (!unixDiag(new Set([ino])).has(ino)) throw new ProbeMismatch(`unix_diag does not list socket:[${ino}]`);
      return `unix_diag lists socket:[${ino}]`;
    } finally {
      closeSync(fd);
    }
  },
};

const PR_TIMER_CREATE_RESTORE_IDS = 77;
const WANTED_ID = 7;

export const timerIdsProbe: Probe = {
  name: 'timer-restore-ids',
  title: 'a POSIX timer created with a chosen id in a child (PR_TIMER_CREATE_RESTORE_IDS)',
  required: false,
  affects: 'restoring processes that have POSIX timers (their ids must not change)',
  needs: [],
  run: (ctx) =>
    withStub(ctx, ({ pid, remote }) =>
      remote.withScratch(PAGE_SIZE, (addr) => {
        remote.call(SYS.prctl, 'prctl(PR_TIMER_CREATE_RESTORE_IDS)', PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
        const id = Buffer.alloc(4);
        id.writeInt32LE(WANTED_ID, 0);
        native.processVmWritev(pid, id, 0, [addr, 4]);
        remote.call(SYS.timer_create, 'timer_create', 1 /* CLOCK_MONOTONIC */, 0, addr);
        const got = readRemote(pid, addr, 4).readInt32LE(0);
        if (got !== WANTED_ID) throw new ProbeMismatch(`timer_create gave id ${got}, not ${WANTED_ID}`);
        return `timer_create gave the id asked for (${WANTED_ID})`;
      }),
    ),
};
