// The whole native surface (native/*.cc), typed in one place. Every function here exists on
// the addon, and the addon exports nothing else (test/native/surface.test.ts checks both).
// All are synchronous unless their name ends in Async. Failures throw a NativeError.
//
// Which calls are async, and why:
// - waitpidAsync: waiting for a restored process to exit can take forever.
// - processVmReadvAsync/WritevAsync: large copies, so the dump pipeline can overlap reads
//   with compression and writes. The sync forms exist for small reads.
// ptrace calls stay synchronous on the thread that seized the tracee (the kernel ties a
// tracee to its tracer thread). PAGEMAP_SCAN and the uffd ioctls are short and sync.

export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  /** UFFDIO_COPY / UFFDIO_ZEROPAGE: bytes done before the failing page. */
  copied?: number;
}

export type Num = number | bigint;

export interface WaitResult {
  pid: number;
  status: number;
}

export interface RseqConfiguration {
  rseqAbiPointer: bigint;
  rseqAbiSize: number;
  signature: number;
  flags: number;
}

export interface PagemapScanArgs {
  start: number;
  end: number;
  flags?: number;
  categoryInverted?: number;
  categoryMask?: number;
  categoryAnyofMask?: number;
  returnMask?: number;
  maxPages?: number;
}

export interface NativeApi {
  errnoName(errno: number): string;
  strerror(errno: number): string;

  ptraceSeize(pid: number, options: Num): void;
  ptraceInterrupt(pid: number): void;
  ptraceCont(pid: number, sig?: number): void;
  ptraceDetach(pid: number, sig?: number): void;
  ptraceSinglestep(pid: number, sig?: number): void;
  ptraceSyscall(pid: number, sig?: number): void;
  ptraceListen(pid: number): void;
  ptraceSetOptions(pid: number, options: Num): void;
  ptraceGetEventMsg(pid: number): bigint;
  /** struct user_regs_struct, 216 bytes. */
  ptraceGetRegs(pid: number): Buffer;
  ptraceSetRegs(pid: number, regs: Buffer): void;
  /** Trimmed to what the kernel filled in. */
  ptraceGetRegset(pid: number, noteType: number, maxSize: number): Buffer;
  ptraceSetRegset(pid: number, noteType: number, data: Buffer): void;
  ptraceGetSigmask(pid: number): bigint;
  ptraceSetSigmask(pid: number, mask: bigint): void;
  /** n * 128-byte siginfo_t records. */
  ptracePeekSiginfo(pid: number, offset: number, count: number, shared: boolean): Buffer;
  ptraceGetRseqConfiguration(pid: number): RseqConfiguration;
  ptracePeek(pid: number, addr: Num): bigint;
  ptracePoke(pid: number, addr: Num, word: bigint): void;

  /** __WALL is always added. {pid: 0} with WNOHANG when nothing is ready. */
  waitpid(pid: number, options?: number): WaitResult;
  waitpidAsync(pid: number, options?: number): Promise<WaitResult>;
  /**
   * Child with PID setTid (0: any) running `path`, seized with `options` + TRACEEXEC, stopped
   * (a SIGTRAP stop just past its exec) at its entry point, before its first instruction.
   * A failed execve throws its errno (ENOENT, EACCES...), the child already reaped.
   */
  clone3Stub(setTid: number, path: string, options: Num): number;
  kill(pid: number, sig: number): void;
  tgkill(tgid: number, tid: number, sig: number): void;
  prctl(option: number, a2?: Num, a3?: Num, a4?: Num, a5?: Num): number;
  getRobustList(pid: number): { head: bigint; len: number };

  /** Raw rax of the syscall run in the stopped thread: -errno on failure. */
  /** park = false: leave the thread in the step's SIGTRAP stop (a restore stub; see inject.cc). */
  injectSyscall(tid: number, syscallIp: Num, nr: number, args?: Num[], park?: boolean): bigint;
  /** Several in one stop, in order: each [nr, ...args]; raw rax of each (see inject.cc). */
  injectSyscalls(tid: number, syscallIp: Num, calls: Num[][], park?: boolean): BigInt64Array;
  /** The syscall runner's machine code (see inject.cc and parasite.ts). */
  syscallRunner(): Buffer;
  /** Runs the thread from entry with rbx and r12 set until its SIGTRAP at trapIp; registers put back. */
  runInjected(tid: number, entry: Num, trapIp: Num, rbx: Num, r12: Num, park?: boolean): void;

  /** ranges: [addr, len, addr, len, ...], filled contiguously from bufferOffset. */
  processVmReadv(pid: number, buffer: Buffer, bufferOffset: number, ranges: number[] | Float64Array): number;
  processVmWritev(pid: number, buffer: Buffer, bufferOffset: number, ranges: number[] | Float64Array): number;
  processVmReadvAsync(pid: number, buffer: Buffer, bufferOffset: number, ranges: number[] | Float64Array): Promise<number>;
  processVmWritevAsync(pid: number, buffer: Buffer, bufferOffset: number, ranges: number[] | Float64Array): Promise<number>;

  pidfdOpen(pid: number, flags?: number): number;
  pidfdGetfd(pidfd: number, targetFd: number, flags?: number): number;
  pidfdSendSignal(pidfd: number, sig: number): void;

  userfaultfd(flags?: number): number;
  uffdApi(fd: number, features: Num): { features: bigint; ioctls: bigint };
  uffdRegister(fd: number, start: Num, len: Num, mode: Num): bigint;
  uffdUnregister(fd: number, start: Num, len: Num): void;
  uffdCopy(fd: number, dst: Num, src: Buffer, srcOffset: number, len: number, mode: Num): number;
  uffdZeropage(fd: number, start: Num, len: Num, mode: Num): number;
  uffdWriteprotect(fd: number, start: Num, len: Num, mode: Num): void;
  uffdWake(fd: number, start: Num, len: Num): void;
  /** Count of 32-byte uffd_msg records read into buffer; 0 when none is waiting (O_NONBLOCK uffd). */
  uffdRead(fd: number, buffer: Buffer): number;

  pagemapScan(fd: number, args: PagemapScanArgs, vec: Buffer): { count: number; walkEnd: number };
  /** pagemapScan on the libuv pool. */
  pagemapScanAsync(fd: number, args: PagemapScanArgs, vec: Buffer): Promise<{ count: number; walkEnd: number }>;

  poll(fds: number[], events: number[], timeoutMs: number): number[];

  /** 0: the same object; 1 or 2: ordered; 3: different. */
  kcmp(pid1: number, pid2: number, type: number, idx1: number, idx2: number): number;
  /** [readFd, writeFd] */
  pipe2(flags: number): [number, number];
  /** Duplicates up to len bytes of a pipe's buffer into another pipe without consuming them. */
  tee(fdIn: number, fdOut: number, len: number, flags: number): number;
  fcntl(fd: number, cmd: number, arg?: number): number;
  /** Starts (SYNC_FILE_RANGE_WRITE) or waits for writeback of [offset, offset + nbytes) of a file. */
  syncFileRange(fd: number, offset: number, nbytes: number, flags: number): void;
  /** read(2) on the libuv pool from the fd's position until buf is full or the file ends: bytes read. */
  readFullAsync(fd: number, buf: Buffer): Promise<number>;

  // native/sockets.cc: addresses and option values are the kernel's structs in Buffers.
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, sockaddr: Buffer): void;
  /** Blocking unless the socket is O_NONBLOCK; EINTR is retried. */
  connect(fd: number, sockaddr: Buffer): void;
  listen(fd: number, backlog: number): void;
  shutdown(fd: number, how: number): void;
  /** The value, trimmed to the length the kernel returned. */
  getsockopt(fd: number, level: number, name: number, maxLen: number): Buffer;
  setsockopt(fd: number, level: number, name: number, value: Buffer): void;
  getsockname(fd: number): Buffer;
  getpeername(fd: number): Buffer;
  send(fd: number, buffer: Buffer, offset: number, len: number, flags: number): number;
  /** Fills buffer from offset; with MSG_TRUNC on a datagram socket, the message's real length. */
  recv(fd: number, buffer: Buffer, offset: number, flags: number): number;

  // native/fdkinds.cc
  openByHandleAt(mountFd: number, handleType: number, handle: Buffer, flags: number): number;
  /** perf_event_open(attr, pid, cpu, groupFd, flags): attr is a struct perf_event_attr with its size set. */
  perfEventOpen(attr: Buffer, pid: number, cpu: number, groupFd: number, flags: number): number;
  /** ioctl(fd, request, buffer): the kernel reads and/or writes the buffer in place. */
  ioctlBuffer(fd: number, request: Num, buffer: Buffer): number;
  /** clock_gettime(clockid) in nanoseconds. */
  clockGettime(clockid: number): bigint;
  /** timerfd_gettime in nanoseconds; brings an expired periodic timer up to date, as a read would. */
  timerfdGettime(fd: number): { interval: bigint; value: bigint };
  /** kcmp(pid1, pid2, KCMP_EPOLL_TFD, fd1, {epfd, tfd, toff}): 0 when fd1 is the file the epoll item watches. */
  kcmpEpollTfd(pid1: number, pid2: number, fd1: number, epfd: number, tfd: number, toff: number): number;

  constants: {
    PAGEMAP_SCAN: number;
    pageSize: number;
    uffdMsgSize: number;
    pageRegionSize: number;
    userRegsSize: number;
  };
}
