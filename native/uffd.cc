// userfaultfd and its ioctls. The fd may be our own (tests, probes) or one taken out of a
// target with pidfd_getfd: the ioctls then act on the target's mm.
// COPY and ZEROPAGE report partial progress: on failure the Error carries `copied`, the
// bytes done before the failing page (EAGAIN with copied > 0, or EEXIST), so the caller
// can skip that page and go on.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"
#include "uapi.h"

namespace criu {

static Napi::Value Userfaultfd(const Napi::CallbackInfo& info) {
  int flags = OptI32(info, 0, O_CLOEXEC | O_NONBLOCK);
  long fd = syscall(SYS_userfaultfd, flags);
  if (fd == -1) ThrowErrno(info.Env(), errno, Call("userfaultfd", flags));
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value Api(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "uffdApi");
  int fd = I32(info[0]);
  struct uffdio_api api = {UFFD_API, U64(info[1]), 0};
  if (ioctl(fd, UFFDIO_API, &api) == -1) ThrowErrno(info.Env(), errno, Call("ioctl(UFFDIO_API)", fd));
  auto o = Napi::Object::New(info.Env());
  o.Set("features", BigU64(info.Env(), api.features));
  o.Set("ioctls", BigU64(info.Env(), api.ioctls));
  return o;
}

static Napi::Value Register(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "uffdRegister");
  int fd = I32(info[0]);
  struct uffdio_register reg;
  reg.range.start = U64(info[1]);
  reg.range.len = U64(info[2]);
  reg.mode = U64(info[3]);
  reg.ioctls = 0;
  if (ioctl(fd, UFFDIO_REGISTER, &reg) == -1)
    ThrowErrno(info.Env(), errno, CallAt("ioctl(UFFDIO_REGISTER)", reg.range.start));
  return BigU64(info.Env(), reg.ioctls);
}

static Napi::Value Unregister(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "uffdUnregister");
  int fd = I32(info[0]);
  struct uffdio_range r = {U64(info[1]), U64(info[2])};
  if (ioctl(fd, UFFDIO_UNREGISTER, &r) == -1) ThrowErrno(info.Env(), errno, CallAt("ioctl(UFFDIO_UNREGISTER)", r.start));
  return info.Env().Undefined();
}

static void ThrowPartial(Napi::Env env, int err, const char* call, uint64_t addr, int64_t done) {
  Napi::Error e = ErrnoError(env, err, CallAt(call, addr));
  e.Set("copied", Napi::Number::New(env, done > 0 ? (double)done : 0));
  throw e;
}

// uffdCopy(fd, dst, buffer, bufferOffset, len, mode) -> bytes copied.
static Napi::Value Copy(const Napi::CallbackInfo& info) {
  RequireArgs(info, 6, "uffdCopy");
  int fd = I32(info[0]);
  auto buf = BufferArg(info[2], "uffdCopy");
  size_t off = U64(info[3]);
  struct uffdio_copy c;
  c.dst = U64(info[1]);
  c.len = U64(info[4]);
  c.mode = U64(info[5]);
  c.copy = 0;
  if (off > buf.Length() || c.len > buf.Length() - off) ThrowErrno(info.Env(), ENOBUFS, CallAt("ioctl(UFFDIO_COPY)", c.dst));
  c.src = (uint64_t)(uintptr_t)(buf.Data() + off);
  if (ioctl(fd, UFFDIO_COPY, &c) == -1) ThrowPartial(info.Env(), errno, "ioctl(UFFDIO_COPY)", c.dst, c.copy);
  return Napi::Number::New(info.Env(), (double)c.copy);
}

static Napi::Value Zeropage(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "uffdZeropage");
  int fd = I32(info[0]);
  struct uffdio_zeropage z;
  z.range.start = U64(info[1]);
  z.range.len = U64(info[2]);
  z.mode = U64(info[3]);
  z.zeropage = 0;
  if (ioctl(fd, UFFDIO_ZEROPAGE, &z) == -1) ThrowPartial(info.Env(), errno, "ioctl(UFFDIO_ZEROPAGE)", z.range.start, z.zeropage);
  return Napi::Number::New(info.Env(), (double)z.zeropage);
}

static Napi::Value Writeprotect(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "uffdWriteprotect");
  int fd = I32(info[0]);
  struct uffdio_writeprotect w;
  w.range.start = U64(info[1]);
  w.range.len = U64(info[2]);
  w.mode = U64(info[3]);
  if (ioctl(fd, UFFDIO_WRITEPROTECT, &w) == -1) ThrowErrno(info.Env(), errno, CallAt("ioctl(UFFDIO_WRITEPROTECT)", w.range.start));
  return info.Env().Undefined();
}

static Napi::Value Wake(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "uffdWake");
  int fd = I32(info[0]);
  struct uffdio_range r = {U64(info[1]), U64(info[2])};
  if (ioctl(fd, UFFDIO_WAKE, &r) == -1) ThrowErrno(info.Env(), errno, CallAt("ioctl(UFFDIO_WAKE)", r.start));
  return info.Env().Undefined();
}

// uffdRead(fd, buffer) -> number of 32-byte uffd_msg records read; 0 when a non-blocking
// uffd has none (EAGAIN is the normal "empty" answer here, not a failure).
static Napi::Value Read(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "uffdRead");
  int fd = I32(info[0]);
  auto buf = BufferArg(info[1], "uffdRead");
  size_t cap = buf.Length() - buf.Length() % sizeof(struct uffd_msg);
  ssize_t n;
  do n = read(fd, buf.Data(), cap);
  while (n == -1 && errno == EINTR);
  if (n == -1 && errno == EAGAIN) return Napi::Number::New(info.Env(), 0);
  if (n == -1) ThrowErrno(info.Env(), errno, Call("read(userfaultfd)", fd));
  return Napi::Number::New(info.Env(), (double)(n / sizeof(struct uffd_msg)));
}

void InitUffd(Napi::Env env, Napi::Object exports) {
  exports.Set("userfaultfd", Napi::Function::New(env, Userfaultfd, "userfaultfd"));
  exports.Set("uffdApi", Napi::Function::New(env, Api, "uffdApi"));
  exports.Set("uffdRegister", Napi::Function::New(env, Register, "uffdRegister"));
  exports.Set("uffdUnregister", Napi::Function::New(env, Unregister, "uffdUnregister"));
  exports.Set("uffdCopy", Napi::Function::New(env, Copy, "uffdCopy"));
  exports.Set("uffdZeropage", Napi::Function::New(env, Zeropage, "uffdZeropage"));
  exports.Set("uffdWriteprotect", Napi::Function::New(env, Writeprotect, "uffdWriteprotect"));
  exports.Set("uffdWake", Napi::Function::New(env, Wake, "uffdWake"));
  exports.Set("uffdRead", Napi::Function::New(env, Read, "uffdRead"));
}

}  // namespace criu
