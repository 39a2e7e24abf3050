// Calls the dump of kernel-object fds needs beyond plain fd operations: open_by_handle_at
// (an inotify watch names its inode by file handle, not by path), kcmp KCMP_EPOLL_TFD (is
// the file an epoll item watches the one at that fd number?), an ioctl on a buffer, and
// clock_gettime of any clock (timer deadlines are kept in their own clock), timerfd_gettime.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace criu {

// openByHandleAt(mountFd, handleType, handleBytes, flags) -> fd
static Napi::Value OpenByHandleAt(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "openByHandleAt");
  int mountFd = I32(info[0]);
  auto bytes = BufferArg(info[2], "openByHandleAt");
  std::vector<uint8_t> mem(sizeof(file_handle) + bytes.Length());
  auto* fh = reinterpret_cast<file_handle*>(mem.data());
  fh->handle_bytes = (unsigned)bytes.Length();
  fh->handle_type = I32(info[1]);
  memcpy(fh->f_handle, bytes.Data(), bytes.Length());
  int fd = open_by_handle_at(mountFd, fh, I32(info[3]));
  if (fd == -1) ThrowErrno(info.Env(), errno, Call("open_by_handle_at", mountFd));
  return Napi::Number::New(info.Env(), fd);
}

// ioctlBuffer(fd, request, buffer) -> the ioctl's result; the kernel reads and/or writes buffer
static Napi::Value IoctlBuffer(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "ioctlBuffer");
  int fd = I32(info[0]);
  unsigned long req = (unsigned long)U64(info[1]);
  auto buf = BufferArg(info[2], "ioctlBuffer");
  int r = ioctl(fd, req, buf.Data());
  if (r == -1) ThrowErrno(info.Env(), errno, Call("ioctl", fd));
  return Napi::Number::New(info.Env(), r);
}

// clockGettime(clockid) -> nanoseconds as a bigint
static Napi::Value ClockGettime(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "clockGettime");
  int clk = I32(info[0]);
  timespec ts;
  if (clock_gettime(clk, &ts) == -1) ThrowErrno(info.Env(), errno, Call("clock_gettime", clk));
  return BigI64(info.Env(), (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

// timerfdGettime(fd) -> {interval, value} in nanoseconds (bigints). Like a read, it brings an
// expired periodic timer up to date (its next expiry, the missed ticks counted).
static Napi::Value TimerfdGettime(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "timerfdGettime");
  int fd = I32(info[0]);
  itimerspec its;
  if (timerfd_gettime(fd, &its) == -1) ThrowErrno(info.Env(), errno, Call("timerfd_gettime", fd));
  auto o = Napi::Object::New(info.Env());
  o.Set("interval", BigI64(info.Env(), (int64_t)its.it_interval.tv_sec * 1000000000LL + its.it_interval.tv_nsec));
  o.Set("value", BigI64(info.Env(), (int64_t)its.it_value.tv_sec * 1000000000LL + its.it_value.tv_nsec));
  return o;
}

// kcmpEpollTfd(pid1, pid2, fd1, epfd, tfd, toff) -> kcmp(pid1, pid2, KCMP_EPOLL_TFD, fd1, {epfd, tfd, toff}):
// 0 when pid1's fd1 is the file that pid2's epoll epfd watches as (tfd, toff).
static Napi::Value KcmpEpollTfd(const Napi::CallbackInfo& info) {
  RequireArgs(info, 6, "kcmpEpollTfd");
  int pid1 = I32(info[0]);
  kcmp_epoll_slot slot;
  slot.efd = (uint32_t)I32(info[3]);
  slot.tfd = (uint32_t)I32(info[4]);
  slot.toff = (uint32_t)I32(info[5]);
  long r = syscall(SYS_kcmp, pid1, I32(info[1]), KCMP_EPOLL_TFD, (unsigned long)I32(info[2]), (unsigned long)&slot);
  if (r == -1) ThrowErrno(info.Env(), errno, Call("kcmp(KCMP_EPOLL_TFD)", pid1));
  return Napi::Number::New(info.Env(), r);
}

void InitFdkinds(Napi::Env env, Napi::Object exports) {
  exports.Set("openByHandleAt", Napi::Function::New(env, OpenByHandleAt, "openByHandleAt"));
  exports.Set("ioctlBuffer", Napi::Function::New(env, IoctlBuffer, "ioctlBuffer"));
  exports.Set("clockGettime", Napi::Function::New(env, ClockGettime, "clockGettime"));
  exports.Set("timerfdGettime", Napi::Function::New(env, TimerfdGettime, "timerfdGettime"));
  exports.Set("kcmpEpollTfd", Napi::Function::New(env, KcmpEpollTfd, "kcmpEpollTfd"));
}

}  // namespace criu
