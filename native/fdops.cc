// fd-level calls Node lacks: kcmp (do two fds share one open file description?), pipe2,
// tee (copy a pipe's buffered data without consuming it), fcntl with an integer argument,
// sync_file_range (start writeback of one range of a file without waiting for it), and read(2)
// repeated on the libuv pool until a buffer is full or the file ends (a /proc file that the
// kernel takes long to generate, read while the main thread works).
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace criu {

// kcmp(pid1, pid2, type, idx1, idx2) -> 0 equal, 1 / 2 ordered, 3 not equal.
static Napi::Value Kcmp(const Napi::CallbackInfo& info) {
  RequireArgs(info, 5, "kcmp");
  int pid1 = I32(info[0]);
  long r = syscall(SYS_kcmp, pid1, I32(info[1]), I32(info[2]), U64(info[3]), U64(info[4]));
  if (r == -1) ThrowErrno(info.Env(), errno, Call("kcmp", pid1));
  return Napi::Number::New(info.Env(), r);
}

// pipe2(flags) -> [readFd, writeFd]
static Napi::Value Pipe2(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "pipe2");
  int flags = I32(info[0]);
  int fds[2];
  if (pipe2(fds, flags) == -1) ThrowErrno(info.Env(), errno, Call("pipe2", flags));
  auto a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  a.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return a;
}

// tee(fdIn, fdOut, len, flags) -> bytes duplicated (0 when the input pipe is empty).
static Napi::Value Tee(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "tee");
  int in = I32(info[0]);
  ssize_t n = tee(in, I32(info[1]), U64(info[2]), I32(info[3]));
  if (n == -1) ThrowErrno(info.Env(), errno, Call("tee", in));
  return Napi::Number::New(info.Env(), (double)n);
}

// fcntl(fd, cmd, intArg) -> the raw non-negative result.
static Napi::Value Fcntl(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "fcntl");
  int fd = I32(info[0]);
  int cmd = I32(info[1]);
  int r = fcntl(fd, cmd, info.Length() > 2 ? (long)I64(info[2]) : 0L);
  if (r == -1) ThrowErrno(info.Env(), errno, Call("fcntl", fd));
  return Napi::Number::New(info.Env(), r);
}

// sync_file_range(fd, offset, nbytes, flags) -> undefined.
static Napi::Value SyncFileRange(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "syncFileRange");
  int fd = I32(info[0]);
  if (sync_file_range(fd, I64(info[1]), I64(info[2]), (unsigned)I32(info[3])) == -1) ThrowErrno(info.Env(), errno, Call("sync_file_range", fd));
  return info.Env().Undefined();
}

// readFullAsync(fd, buf) -> Promise<bytes read>: read(2) from the fd's position until buf is
// full or read returns 0. EINTR is retried; any other error rejects (bytes read are lost).
class ReadFullWorker : public Napi::AsyncWorker {
 public:
  ReadFullWorker(Napi::Env env, int fd, Napi::Buffer<uint8_t> buf)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), data_(buf.Data()), len_(buf.Length()) {
    keep_ = Napi::Persistent(buf);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    while (done_ < len_) {
      ssize_t n = read(fd_, data_ + done_, len_ - done_);
      if (n == -1 && errno == EINTR) continue;
      if (n == -1) {
        err_ = errno;
        return;
      }
      if (n == 0) return;
      done_ += (size_t)n;
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (err_) deferred_.Reject(ErrnoError(Env(), err_, Call("read", fd_)).Value());
    else deferred_.Resolve(Napi::Number::New(Env(), (double)done_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  uint8_t* data_;
  size_t len_;
  Napi::Reference<Napi::Buffer<uint8_t>> keep_;
  size_t done_ = 0;
  int err_ = 0;
};

static Napi::Value ReadFullAsync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "readFullAsync");
  auto* w = new ReadFullWorker(info.Env(), I32(info[0]), BufferArg(info[1], "readFullAsync"));
  auto p = w->Promise();
  w->Queue();
  return p;
}

void InitFdops(Napi::Env env, Napi::Object exports) {
  exports.Set("kcmp", Napi::Function::New(env, Kcmp, "kcmp"));
  exports.Set("pipe2", Napi::Function::New(env, Pipe2, "pipe2"));
  exports.Set("tee", Napi::Function::New(env, Tee, "tee"));
  exports.Set("fcntl", Napi::Function::New(env, Fcntl, "fcntl"));
  exports.Set("syncFileRange", Napi::Function::New(env, SyncFileRange, "syncFileRange"));
  exports.Set("readFullAsync", Napi::Function::New(env, ReadFullAsync, "readFullAsync"));
}

}  // namespace criu
