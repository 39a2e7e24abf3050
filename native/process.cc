// Process-level calls: waitpid, clone3 with set_tid (the restore stub), signals, prctl,
// get_robust_list.
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace criu {

static Napi::Object WaitResult(Napi::Env env, pid_t pid, int status) {
  auto o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, pid));
  o.Set("status", Napi::Number::New(env, status));
  return o;
}

// waitpid(pid, options) with __WALL always added. Returns {pid, status}; pid 0 with WNOHANG
// when nothing changed. Synchronous: use it for stops the caller has just caused.
static Napi::Value Waitpid(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "waitpid");
  int pid = I32(info[0]);
  int options = OptI32(info, 1, 0);
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, options | __WALL);
  while (r == -1 && errno == EINTR);
  if (r == -1) ThrowErrno(info.Env(), errno, Call("waitpid", pid));
  return WaitResult(info.Env(), r, status);
}

// The same on the libuv pool, for waits of unknown length (a restored process's exit).
// waitpid may be called from any thread of the tracer's process.
class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, int pid, int options)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), pid_(pid), options_(options) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    do result_ = waitpid(pid_, &status_, options_ | __WALL);
    while (result_ == -1 && errno == EINTR);
    if (result_ == -1) err_ = errno;
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (err_) deferred_.Reject(ErrnoError(Env(), err_, Call("waitpid", pid_)).Value());
    else deferred_.Resolve(WaitResult(Env(), result_, status_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  int pid_, options_, status_ = 0, err_ = 0;
  pid_t result_ = 0;
};

static Napi::Value WaitpidAsync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "waitpidAsync");
  auto* w = new WaitWorker(info.Env(), I32(info[0]), OptI32(info, 1, 0));
  auto p = w->Promise();
  w->Queue();
  return p;
}

// clone3Stub(setTid, path, seizeOptions) -> pid.
// Forks a child (clone3, with set_tid when setTid > 0) that waits until this thread has
// PTRACE_SEIZEd it, closes every fd above 2, keeps 0-2 across the exec, and execs `path`. Returns once the child sits in
// a stop at a user-mode instruction boundary right after exec, ready for injection. The child of a multi-threaded
// Node process may only make raw syscalls before exec, which is all it does.
static Napi::Value Clone3Stub(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "clone3Stub");
  Napi::Env env = info.Env();
  int setTid = I32(info[0]);
  std::string path = StringArg(info[1], "clone3Stub");
  unsigned long options = U64(info[2]) | PTRACE_O_TRACEEXEC;
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) == -1) ThrowErrno(env, errno, "pipe2(clone3Stub)");

  pid_t tids[1] = {setTid};
  struct clone_args args;
  memset(&args, 0, sizeof(args));
  args.exit_signal = SIGCHLD;
  if (setTid > 0) {
    args.set_tid = (uint64_t)(uintptr_t)tids;
    args.set_tid_size = 1;
  }
  char* const argv[] = {(char*)path.c_str(), nullptr};
  char* const envp[] = {nullptr};
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) {
    char c;
    syscall(SYS_close, gate[1]);
    while (syscall(SYS_read, gate[0], &c, 1) == -1 && errno == EINTR) {
    }
    syscall(SYS_close_range, 3, ~0U, 0);
    // Node opens its stdio with O_CLOEXEC; the stub keeps 0-2 (--shell-job hands them on).
    for (int fd = 0; fd < 3; fd++) syscall(SYS_fcntl, fd, F_SETFD, 0);
    syscall(SYS_execve, argv[0], argv, envp);
    // The exit status carries execve's errno to the parent (errno values fit in 8 bits).
    syscall(SYS_exit_group, errno);
  }
  int err = errno;
  close(gate[0]);
  if (pid < 0) {
    close(gate[1]);
    ThrowErrno(env, err, Call("clone3(set_tid)", setTid));
  }
  // gate[1] is closed (and set to -1) once the child is let go: never close it twice, the
  // number may belong to another thread's fd by then.
  auto fail = [&](int e, const char* what) {
    if (gate[1] >= 0) close(gate[1]);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, __WALL);
    ThrowErrno(env, e, Call(what, pid));
  };
  if (ptrace(PTRACE_SEIZE, pid, 0, (void*)options) == -1) fail(errno, "ptrace(PTRACE_SEIZE)");
  if (write(gate[1], "x", 1) != 1) fail(errno, "write(clone3Stub gate)");
  close(gate[1]);
  gate[1] = -1;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, __WALL);
    if (r == -1 && errno == EINTR) continue;
    if (r == -1) fail(errno, "waitpid(clone3Stub)");
    if (WIFEXITED(status)) ThrowErrno(env, WEXITSTATUS(status) ? WEXITSTATUS(status) : ENOEXEC, "execve(" + path + ")");
    if (WIFSIGNALED(status)) ThrowErrno(env, ENOEXEC, "execve(" + path + ")");
    if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_EXEC) {
      // That stop is still inside execve: registers set now would be overwritten by its
      // return value. One single-step leaves the syscall and stops at a clean user-mode
      // instruction boundary: the trap comes on the way out of execve, so rip is still the
      // entry point and nothing of the stub has run (test/native/ptrace.test.ts checks it).
      if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == -1) fail(errno, "ptrace(PTRACE_SINGLESTEP)");
      continue;
    }
    if (WIFSTOPPED(status) && (status >> 16) == 0 && WSTOPSIG(status) == SIGTRAP) break;
    // Anything else before the exec (a stray signal): pass it on and keep waiting.
    int sig = WIFSTOPPED(status) && (status >> 16) == 0 ? WSTOPSIG(status) : 0;
    if (ptrace(PTRACE_CONT, pid, 0, (void*)(long)sig) == -1) fail(errno, "ptrace(PTRACE_CONT)");
  }
  return Napi::Number::New(env, pid);
}

static Napi::Value Kill(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "kill");
  int pid = I32(info[0]);
  if (kill(pid, I32(info[1])) == -1) ThrowErrno(info.Env(), errno, Call("kill", pid));
  return info.Env().Undefined();
}

static Napi::Value Tgkill(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "tgkill");
  int tid = I32(info[1]);
  if (syscall(SYS_tgkill, I32(info[0]), tid, I32(info[2])) == -1) ThrowErrno(info.Env(), errno, Call("tgkill", tid));
  return info.Env().Undefined();
}

// prctl on this process: (option, arg2..arg5) -> the raw non-negative result.
static Napi::Value Prctl(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "prctl");
  int option = I32(info[0]);
  unsigned long a[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < 4; i++) a[i] = OptU64(info, i + 1, 0);
  int r = prctl(option, a[0], a[1], a[2], a[3]);
  if (r == -1) ThrowErrno(info.Env(), errno, Call("prctl", option));
  return Napi::Number::New(info.Env(), r);
}

static Napi::Value GetRobustList(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "getRobustList");
  int pid = I32(info[0]);
  void* head = nullptr;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, pid, &head, &len) == -1) ThrowErrno(info.Env(), errno, Call("get_robust_list", pid));
  auto o = Napi::Object::New(info.Env());
  o.Set("head", BigU64(info.Env(), (uint64_t)(uintptr_t)head));
  o.Set("len", Napi::Number::New(info.Env(), (double)len));
  return o;
}

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("waitpid", Napi::Function::New(env, Waitpid, "waitpid"));
  exports.Set("waitpidAsync", Napi::Function::New(env, WaitpidAsync, "waitpidAsync"));
  exports.Set("clone3Stub", Napi::Function::New(env, Clone3Stub, "clone3Stub"));
  exports.Set("kill", Napi::Function::New(env, Kill, "kill"));
  exports.Set("tgkill", Napi::Function::New(env, Tgkill, "tgkill"));
  exports.Set("prctl", Napi::Function::New(env, Prctl, "prctl"));
  exports.Set("getRobustList", Napi::Function::New(env, GetRobustList, "getRobustList"));
}

}  // namespace criu
