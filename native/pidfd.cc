// pidfd_open, pidfd_getfd, pidfd_send_signal. Returned fds are plain numbers owned by the
// caller (close them with fs.closeSync).
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace criu {

static Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "pidfdOpen");
  int pid = I32(info[0]);
  long fd = syscall(SYS_pidfd_open, pid, OptI32(info, 1, 0));
  if (fd == -1) ThrowErrno(info.Env(), errno, Call("pidfd_open", pid));
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value PidfdGetfd(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "pidfdGetfd");
  int pidfd = I32(info[0]);
  int target = I32(info[1]);
  long fd = syscall(SYS_pidfd_getfd, pidfd, target, OptI32(info, 2, 0));
  if (fd == -1) ThrowErrno(info.Env(), errno, Call("pidfd_getfd", target));
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "pidfdSendSignal");
  int pidfd = I32(info[0]);
  if (syscall(SYS_pidfd_send_signal, pidfd, I32(info[1]), nullptr, 0) == -1)
    ThrowErrno(info.Env(), errno, Call("pidfd_send_signal", pidfd));
  return info.Env().Undefined();
}

void InitPidfd(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd, "pidfdGetfd"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
}

}  // namespace criu
