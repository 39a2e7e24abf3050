// Remote syscall injection into a ptrace-stopped thread.
//
//   save regs ─► rip = a `syscall` instruction (0f 05) already in the target, rax = nr,
//   args in rdi rsi rdx r10 r8 r9, orig_rax = -1 (keeps the kernel's restart logic out)
//   ─► PTRACE_SINGLESTEP ─► SIGTRAP stop at syscall exit ─► read rax ─► put regs back.
//
// The target's memory is never written. Its sigmask is left alone: a signal that arrives
// while we step is suppressed at its delivery stop and queued again once the registers are
// back, so it stays pending exactly as if it had arrived a moment later. It is queued again
// with its siginfo (rt_tgsigqueueinfo) where the kernel lets another process do that (a POSIX
// timer's signal keeps its si_value and timer id, a sigqueue()'s its value); otherwise
// (kill, tkill, kernel signals) with tkill, as before.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common.h"

namespace criu {

struct InjectError {
  int err;
  const char* what;
};

static int WaitStop(int pid) {
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, __WALL);
    if (r == -1 && errno == EINTR) continue;
    if (r == -1) throw InjectError{errno, "waitpid"};
    if (!WIFSTOPPED(status)) throw InjectError{ESRCH, "target exited during injected syscall"};
    return status;
  }
}

// A signal taken at a delivery stop, to be queued again.
struct Deferred {
  int sig;
  bool haveInfo;
  siginfo_t info;
};

static Deferred TakeSignal(int pid, int sig) {
  Deferred d{sig, false, {}};
  d.haveInfo = ptrace(PTRACE_GETSIGINFO, pid, 0, &d.info) == 0;
  return d;
}

static int TgidOf(int tid) {
  char path[64], line[128];
  snprintf(path, sizeof path, "/proc/%d/status", tid);
  FILE* f = fopen(path, "re");
  int tgid = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Tgid: %d", &tgid) == 1) break;
  fclose(f);
  return tgid;
}

// rt_tgsigqueueinfo refuses si_code >= 0 and SI_TKILL from another process (the kernel's
// own and kill()'s source info cannot be forged): those go back with tkill.
static void Requeue(int tid, const Deferred& d) {
  if (d.haveInfo && d.info.si_code < 0 && d.info.si_code != SI_TKILL) {
    int tgid = TgidOf(tid);
    siginfo_t info = d.info;
    if (tgid > 0 && syscall(SYS_rt_tgsigqueueinfo, tgid, tid, d.sig, &info) == 0) return;
  }
  syscall(SYS_tkill, tid, d.sig);
}

static bool IsFault(int sig) { return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE; }

// Runs the syscall; returns the raw rax. `saved` must hold the thread's registers.
static int64_t Run(int pid, const user_regs_struct& saved, uint64_t ip, uint64_t nr, const uint64_t* a,
                   std::vector<Deferred>& deferred) {
  user_regs_struct r = saved;
  r.rip = ip;
  r.rax = nr;
  r.orig_rax = (unsigned long long)-1;
  r.rdi = a[0];
  r.rsi = a[1];
  r.rdx = a[2];
  r.r10 = a[3];
  r.r8 = a[4];
  r.r9 = a[5];
  if (ptrace(PTRACE_SETREGS, pid, 0, &r) == -1) throw InjectError{errno, "ptrace(PTRACE_SETREGS)"};
  for (int steps = 0;; steps++) {
    if (steps > 64) throw InjectError{EAGAIN, "injected syscall did not complete"};
    if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == -1) throw InjectError{errno, "ptrace(PTRACE_SINGLESTEP)"};
    int status = WaitStop(pid);
    int sig = WSTOPSIG(status);
    int event = status >> 16;
    if (event != 0) continue;  // group-stop, interrupt or fork/clone event: keep stepping
    user_regs_struct now;
    if (ptrace(PTRACE_GETREGS, pid, 0, &now) == -1) throw InjectError{errno, "ptrace(PTRACE_GETREGS)"};
    if (sig == SIGTRAP && now.rip == ip + 2) return (int64_t)now.rax;
    if (IsFault(sig) && now.rip == ip) throw InjectError{EFAULT, "injected syscall faulted at its instruction"};
    if (sig != SIGTRAP) deferred.push_back(TakeSignal(pid, sig));
  }
}

// The step leaves the thread in a SIGTRAP signal-delivery-stop. Were we to die there, the
// kernel's implicit detach would deliver that SIGTRAP and kill the target. So we park it in a
// PTRACE_EVENT_STOP again (interrupt, resume without the signal): the state it was seized in,
// from which a detach, explicit or not, lets it go on unharmed. Returns an errno or 0.
static int Park(int pid) {
  if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == -1) return errno;
  if (ptrace(PTRACE_CONT, pid, 0, 0) == -1) return errno;
  for (int i = 0; i < 64; i++) {
    int status;
    pid_t r = waitpid(pid, &status, __WALL);
    if (r == -1 && errno == EINTR) continue;
    if (r == -1) return errno;
    if (!WIFSTOPPED(status)) return ESRCH;
    if ((status >> 16) == PTRACE_EVENT_STOP) return 0;
    // A signal arriving meanwhile stays pending (queued again), as during the injection.
    if ((status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP) Requeue(pid, TakeSignal(pid, WSTOPSIG(status)));
    if (ptrace(PTRACE_CONT, pid, 0, 0) == -1) return errno;
  }
  return EAGAIN;
}

// injectSyscall(tid, syscallIp, nr, [a0..a5], park = true) -> bigint (raw rax: -errno on failure).
static Napi::Value InjectSyscall(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "injectSyscall");
  Napi::Env env = info.Env();
  int pid = I32(info[0]);
  uint64_t ip = U64(info[1]);
  uint64_t nr = U64(info[2]);
  uint64_t a[6] = {0, 0, 0, 0, 0, 0};
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    auto arr = ArrayArg(info[3], "injectSyscall");
    // A syscall takes at most six arguments: more is a caller's mistake, not to be dropped.
    if (arr.Length() > 6) ThrowErrno(env, EINVAL, Call("injectSyscall args", arr.Length()));
    for (uint32_t i = 0; i < arr.Length(); i++) a[i] = U64(arr.Get(i));
  }
  // park=false skips re-parking in an event stop: for a restore stub, which dies with us
  // anyway (PTRACE_O_EXITKILL), the extra stop buys nothing and costs a round trip.
  bool park = info.Length() > 4 && !info[4].IsUndefined() ? info[4].ToBoolean().Value() : true;
  user_regs_struct saved;
  if (ptrace(PTRACE_GETREGS, pid, 0, &saved) == -1) ThrowErrno(env, errno, Call("ptrace(PTRACE_GETREGS)", pid));
  std::vector<Deferred> deferred;
  int64_t result = 0;
  InjectError failure{0, nullptr};
  try {
    result = Run(pid, saved, ip, nr, a, deferred);
  } catch (const InjectError& e) {
    failure = e;
  }
  // Put everything back even after a failure, so the caller can still detach cleanly.
  int restoreErr = ptrace(PTRACE_SETREGS, pid, 0, &saved) == -1 ? errno : 0;
  for (const Deferred& d : deferred) Requeue(pid, d);
  if (!restoreErr && park) restoreErr = Park(pid);
  if (failure.what) ThrowErrno(env, failure.err, std::string(failure.what) + "(" + std::to_string(pid) + ", nr " + std::to_string(nr) + ")");
  if (restoreErr) ThrowErrno(env, restoreErr, Call("ptrace(PTRACE_SETREGS)", pid));
  return BigI64(env, result);
}

// injectSyscalls(tid, syscallIp, [[nr, a0..a5], ...], park = true) -> BigInt64Array of raw rax.
// The same, for several syscalls run one after the other in a single stop: the registers are
// saved once and the thread parked once, which halves a call's round trips (the park is one).
// A call that fails with -errno does not stop the others; a step that fails throws, after
// the registers are put back, naming the call's index.
static Napi::Value InjectSyscalls(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "injectSyscalls");
  Napi::Env env = info.Env();
  int pid = I32(info[0]);
  uint64_t ip = U64(info[1]);
  auto list = ArrayArg(info[2], "injectSyscalls");
  std::vector<uint64_t> calls(list.Length() * 7, 0);
  for (uint32_t i = 0; i < list.Length(); i++) {
    auto one = ArrayArg(list.Get(i), "injectSyscalls");
    if (one.Length() < 1 || one.Length() > 7) ThrowErrno(env, EINVAL, Call("injectSyscalls call", i));
    for (uint32_t j = 0; j < one.Length(); j++) calls[i * 7 + j] = U64(one.Get(j));
  }
  bool park = info.Length() > 3 && !info[3].IsUndefined() ? info[3].ToBoolean().Value() : true;
  user_regs_struct saved;
  if (ptrace(PTRACE_GETREGS, pid, 0, &saved) == -1) ThrowErrno(env, errno, Call("ptrace(PTRACE_GETREGS)", pid));
  std::vector<Deferred> deferred;
  auto results = Napi::BigInt64Array::New(env, list.Length());
  InjectError failure{0, nullptr};
  uint32_t at = 0;
  try {
    for (; at < list.Length(); at++) results[at] = Run(pid, saved, ip, calls[at * 7], &calls[at * 7 + 1], deferred);
  } catch (const InjectError& e) {
    failure = e;
  }
  int restoreErr = ptrace(PTRACE_SETREGS, pid, 0, &saved) == -1 ? errno : 0;
  for (const Deferred& d : deferred) Requeue(pid, d);
  if (!restoreErr && park) restoreErr = Park(pid);
  if (failure.what)
    ThrowErrno(env, failure.err, std::string(failure.what) + "(" + std::to_string(pid) + ", call " + std::to_string(at) + ", nr " + std::to_string(calls[at * 7]) + ")");
  if (restoreErr) ThrowErrno(env, restoreErr, Call("ptrace(PTRACE_SETREGS)", pid));
  return results;
}

void InitInject(Napi::Env env, Napi::Object exports) {
  exports.Set("injectSyscall", Napi::Function::New(env, InjectSyscall, "injectSyscall"));
  exports.Set("injectSyscalls", Napi::Function::New(env, InjectSyscalls, "injectSyscalls"));
}

}  // namespace criu
