// x86_64 syscall numbers and the uapi constants the TypeScript side uses.
// (The addon defines the few structs newer than the distro headers in native/uapi.h.)

export const SYS = {
  read: 0,
  write: 1,
  open: 2,
  close: 3,
  fstat: 5,
  lseek: 8,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  brk: 12,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  ioctl: 16,
  pread64: 17,
  pwrite64: 18,
  mremap: 25,
  madvise: 28,
  dup2: 33,
  pause: 34,
  nanosleep: 35,
  getitimer: 36,
  setitimer: 38,
  getpid: 39,
  socket: 41,
  connect: 42,
  accept: 43,
  bind: 49,
  listen: 50,
  socketpair: 53,
  clone: 56,
  exit: 60,
  kill: 62,
  fcntl: 72,
  fsync: 74,
  ftruncate: 77,
  chdir: 80,
  fchdir: 81,
  umask: 95,
  getuid: 102,
  getgid: 104,
  setpgid: 109,
  getppid: 110,
  setsid: 112,
  setresuid: 117,
  setresgid: 119,
  getpgid: 121,
  getsid: 124,
  rt_sigpending: 127,
  rt_sigqueueinfo: 129,
  sigaltstack: 131,
  personality: 135,
  prctl: 157,
  arch_prctl: 158,
  setrlimit: 160,
  gettid: 186,
  tkill: 200,
  futex: 202,
  set_tid_address: 218,
  restart_syscall: 219,
  timer_create: 222,
  timer_settime: 223,
  timer_gettime: 224,
  clock_nanosleep: 230,
  exit_group: 231,
  epoll_ctl: 233,
  tgkill: 234,
  inotify_add_watch: 254,
  inotify_rm_watch: 255,
  openat: 257,
  set_robust_list: 273,
  get_robust_list: 274,
  timerfd_create: 283,
  timerfd_settime: 286,
  accept4: 288,
  signalfd4: 289,
  eventfd2: 290,
  epoll_create1: 291,
  dup3: 292,
  pipe2: 293,
  inotify_init1: 294,
  rt_tgsigqueueinfo: 297,
  prlimit64: 302,
  memfd_create: 319,
  userfaultfd: 323,
  rseq: 334,
  pidfd_open: 434,
  clone3: 435,
  close_range: 436,
  pidfd_getfd: 438,
} as const;

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;
export const MAP = {
  SHARED: 0x01,
  PRIVATE: 0x02,
  FIXED: 0x10,
  ANONYMOUS: 0x20,
  GROWSDOWN: 0x100,
  NORESERVE: 0x4000,
  FIXED_NOREPLACE: 0x100000,
} as const;
export const MREMAP = { MAYMOVE: 1, FIXED: 2, DONTUNMAP: 4 } as const;
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  ACCMODE: 3,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000,
  LARGEFILE: 0o100000,
  PATH: 0o10000000,
} as const;
export const F = { DUPFD: 0, GETFD: 1, SETFD: 2, GETFL: 3, SETFL: 4, SETOWN: 8, GETOWN: 9 } as const;
/** sync_file_range(2) flags. */
export const SYNC_FILE_RANGE = { WAIT_BEFORE: 1, WRITE: 2, WAIT_AFTER: 4 } as const;

export const PTRACE_O = {
  TRACESYSGOOD: 1,
  TRACEFORK: 1 << 1,
  TRACEVFORK: 1 << 2,
  TRACECLONE: 1 << 3,
  TRACEEXEC: 1 << 4,
  TRACEVFORKDONE: 1 << 5,
  TRACEEXIT: 1 << 6,
  TRACESECCOMP: 1 << 7,
  EXITKILL: 1 << 20,
  SUSPEND_SECCOMP: 1 << 21,
} as const;
export const PTRACE_EVENT = { FORK: 1, VFORK: 2, CLONE: 3, EXEC: 4, VFORK_DONE: 5, EXIT: 6, SECCOMP: 7, STOP: 128 } as const;

export const NT = { PRSTATUS: 1, PRFPREG: 2, X86_XSTATE: 0x202 } as const;

export const PR = {
  SET_PDEATHSIG: 1,
  GET_DUMPABLE: 3,
  SET_DUMPABLE: 4,
  SET_NAME: 15,
  GET_NAME: 16,
  SET_MM: 35,
  SET_CHILD_SUBREAPER: 36,
  GET_CHILD_SUBREAPER: 37,
  SET_NO_NEW_PRIVS: 38,
  GET_TID_ADDRESS: 40,
  SET_THP_DISABLE: 41,
} as const;
export const PR_SET_MM = { EXE_FILE: 13, MAP: 14, MAP_SIZE: 15 } as const;

export const ARCH = { SET_FS: 0x1002, GET_FS: 0x1003, SET_GS: 0x1001, GET_GS: 0x1004 } as const;

export const SIG = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
} as const;
export const NSIG = 64;

export const WNOHANG = 1;

export const UFFD = {
  API: 0xaa,
  USER_MODE_ONLY: 1,
  FEATURE_PAGEFAULT_FLAG_WP: 1n << 0n,
  FEATURE_EVENT_FORK: 1n << 1n,
  FEATURE_EVENT_REMAP: 1n << 2n,
  FEATURE_EVENT_REMOVE: 1n << 3n,
  FEATURE_EVENT_UNMAP: 1n << 6n,
  FEATURE_THREAD_ID: 1n << 8n,
  FEATURE_EXACT_ADDRESS: 1n << 11n,
  FEATURE_WP_UNPOPULATED: 1n << 13n,
  FEATURE_WP_ASYNC: 1n << 15n,
  FEATURE_MOVE: 1n << 16n,
  REGISTER_MODE_MISSING: 1n,
  REGISTER_MODE_WP: 2n,
  COPY_MODE_DONTWAKE: 1n,
  COPY_MODE_WP: 2n,
  ZEROPAGE_MODE_DONTWAKE: 1n,
  WRITEPROTECT_MODE_WP: 1n,
  EVENT_PAGEFAULT: 0x12,
  EVENT_FORK: 0x13,
  EVENT_REMAP: 0x14,
  EVENT_REMOVE: 0x15,
  EVENT_UNMAP: 0x16,
  PAGEFAULT_FLAG_WRITE: 1n,
  PAGEFAULT_FLAG_WP: 2n,
} as const;

export const PAGE_IS = {
  WPALLOWED: 1 << 0,
  WRITTEN: 1 << 1,
  FILE: 1 << 2,
  PRESENT: 1 << 3,
  SWAPPED: 1 << 4,
  PFNZERO: 1 << 5,
  HUGE: 1 << 6,
  SOFT_DIRTY: 1 << 7,
} as const;
export const PM_SCAN = { WP_MATCHING: 1 << 0, CHECK_WPASYNC: 1 << 1 } as const;

/** The highest user address PAGEMAP_SCAN accepts as `end` (above 1<<47 gives EFAULT). */
export const USER_ADDR_END = 0x7ffffffff000;
export const PAGE_SIZE = 4096;

/** Kernel-internal restart codes seen in rax of a thread stopped inside a syscall. */
export const ERESTART = { SYS: 512, NOINTR: 513, NOHAND: 514, RESTARTBLOCK: 516 } as const;
