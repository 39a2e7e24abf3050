// The fd-kind victims: test/fixtures/fx_fds.c, one mode per kind (see its header for what each
// sets up and checks). Same protocol as the other fixtures: "ready", SIGTERM, PASS or FAIL.
import { fixture } from './fixtures.js';

export interface FdCase {
  /** fx_fds mode, and the FX_BREAK name that damages it. */
  mode: string;
  /** What the dump must list for it in `show` (kinds of fds 10 ...). */
  kinds: string[];
  /** More arguments (inet: "outside", a test connects from outside after the restore). */
  extra?: string[];
  /** A datagram socket of the test's at DIR/outside.sock, which the victim connects to (and writes "to outside", then "again" after the restore). */
  outsideSocket?: boolean;
  /** The victim sends itself periodic signals: never "asleep" for long; SIGTERM is seen at the next one. */
  busy?: boolean;
}

export const fdCmd = () => fixture('fx_fds');

export const fdCases: FdCase[] = [
  { mode: 'fifo', kinds: ['fifo', 'fifo', 'fifo'] },
  { mode: 'unix-pairs', kinds: ['unix', 'unix', 'unix', 'unix', 'unix', 'unix', 'unix', 'unix', 'unix'] },
  { mode: 'unix-listen', kinds: ['unix', 'unix', 'unix', 'unix', 'unix', 'unix', 'unix'], outsideSocket: true },
  { mode: 'inet', kinds: ['inet', 'inet', 'inet', 'inet', 'inet'], extra: ['outside'] },
  { mode: 'eventfd', kinds: ['eventfd', 'eventfd'] },
  { mode: 'epoll', kinds: ['epoll', 'eventfd', 'pipe', 'pipe', 'epoll', 'eventfd'] },
  { mode: 'timerfd', kinds: ['timerfd', 'timerfd', 'timerfd', 'timerfd'] },
  { mode: 'signalfd', kinds: ['signalfd'] },
  { mode: 'inotify', kinds: ['inotify'] },
  { mode: 'memfd', kinds: ['memfd', 'memfd', 'memfd'] },
  { mode: 'timers', kinds: [], busy: true },
  { mode: 'devices', kinds: ['chr', 'chr', 'chr'] },
];

/** Kinds the dump refuses, with the words its error must use for each. */
export const unsupportedCases: Array<{ kind: string; named: RegExp }> = [
  { kind: 'io_uring', named: /is an io_uring instance \(anon_inode:\[io_uring\]\): not supported yet/ },
  { kind: 'perf', named: /is a perf event \(anon_inode:\[?perf_event\]?\): not supported yet/ },
  { kind: 'bpf', named: /is a BPF map \(anon_inode:bpf-map\): not supported yet/ },
  { kind: 'userfaultfd', named: /is a userfaultfd \(anon_inode:\[userfaultfd\]\): not supported yet/ },
  { kind: 'pidfd', named: /is a pidfd \(anon_inode:\[pidfd\]\): not supported yet/ },
  { kind: 'netlink', named: /is a netlink socket \(socket:\[\d+\]\): not supported yet/ },
  { kind: 'tcp-established', named: /is a TCP connection 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(ESTABLISHED\): established TCP connections are dumped only with --tcp-established/ },
];
