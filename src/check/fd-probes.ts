// Probes for the fd kinds and timers (issue 7): what the dump of unix sockets, the restore
// of POSIX timers and the move of established TCP connections rely on beyond the basics.
import { spawnSync } from 'node:child_process';
import { closeSync, readlinkSync } from 'node:fs';
import { PAGE_SIZE, SYS } from '../kernel/syscalls.js';
import { native } from '../kernel/native.js';
import { readRemote } from '../kernel/remote.js';
import { unixDiag } from '../kernel/sock-diag.js';
import { AF, encodeInet, IPPROTO, SOCK } from '../kernel/sockets.js';
import { QUEUE, queueSeq, REPAIR, repairWindow, setRepair, setRepairQueue } from '../kernel/tcp-repair.js';
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

export const tcpRepairProbe: Probe = {
  name: 'tcp-repair',
  title: 'a loopback TCP connection of ours read in repair mode (TCP_REPAIR, TCP_QUEUE_SEQ, TCP_REPAIR_WINDOW)',
  required: false,
  affects: 'dump and restore with --tcp-established',
  needs: ['NET_ADMIN'],
  run() {
    const fds: number[] = [];
    try {
      const l = native.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, IPPROTO.TCP);
      fds.push(l);
      native.bind(l, encodeInet('ipv4', { addr: '127.0.0.1', port: 0 }));
      native.listen(l, 1);
      const c = native.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, IPPROTO.TCP);
      fds.push(c);
      native.connect(c, native.getsockname(l));
      setRepair(c, REPAIR.ON);
      try {
        const seq = queueSeq(c, QUEUE.SEND);
        repairWindow(c);
        return `send queue at sequence ${seq}; window read`;
      } finally {
        setRepairQueue(c, QUEUE.NONE);
        setRepair(c, REPAIR.OFF_NO_PROBE);
      }
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  },
};

export const networkLockProbe: Probe = {
  name: 'network-lock',
  title: 'nftables answers (`nft list tables`), to hold off packets of connections being moved',
  required: false,
  affects: 'dump and restore with --tcp-established (unless --network-lock skip)',
  needs: ['NET_ADMIN'],
  run() {
    const r = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    if (r.error) throw new ProbeMismatch((r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'nft is not installed (Debian: apt-get install nftables)' : r.error.message);
    if (r.status !== 0) throw new ProbeMismatch(`nft list tables: ${r.stderr.trim() || `exit status ${r.status}`}`);
    return 'nft lists the tables';
  },
};
