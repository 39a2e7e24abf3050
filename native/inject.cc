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
#include <string>
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

// Resumes the thread (PTRACE_SINGLESTEP or PTRACE_CONT) until a stop other than an event
// (group-stop, interrupt, fork/clone: resumed again); returns its signal, registers in `now`.
// Gives up after 64 resumes: the caller's code is a few instructions.
static int NextSignalStop(int pid, __ptrace_request request, user_regs_struct& now) {
  for (int resumes = 0; resumes <= 64; resumes++) {
    if (ptrace(request, pid, 0, 0) == -1) throw InjectError{errno, request == PTRACE_CONT ? "ptrace(PTRACE_CONT)" : "ptrace(PTRACE_SINGLESTEP)"};
    int status = WaitStop(pid);
    if ((status >> 16) != 0) continue;
    if (ptrace(PTRACE_GETREGS, pid, 0, &now) == -1) throw InjectError{errno, "ptrace(PTRACE_GETREGS)"};
    return WSTOPSIG(status);
  }
  throw InjectError{EAGAIN, "injected code did not complete"};
}

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
  for (int stops = 0;; stops++) {
    if (stops > 64) throw InjectError{EAGAIN, "injected syscall did not complete"};
    user_regs_struct now;
    int sig = NextSignalStop(pid, PTRACE_SINGLESTEP, now);
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

// Saves the thread's registers, runs `body` (which may throw InjectError), then puts the
// registers back, queues again the signals taken meanwhile and parks the thread, even after
// a failure, so the caller can still detach cleanly; then throws the failure, if any,
// with `describe()` (what ran: "nr 12", "call 3, nr 13") in its message.
template <typename Body, typename Describe>
static void Guarded(Napi::Env env, int pid, bool park, Body body, Describe describe) {
  user_regs_struct saved;
  if (ptrace(PTRACE_GETREGS, pid, 0, &saved) == -1) ThrowErrno(env, errno, Call("ptrace(PTRACE_GETREGS)", pid));
  std::vector<Deferred> deferred;
  InjectError failure{0, nullptr};
  try {
    body(saved, deferred);
  } catch (const InjectError& e) {
    failure = e;
  }
  int restoreErr = ptrace(PTRACE_SETREGS, pid, 0, &saved) == -1 ? errno : 0;
  for (const Deferred& d : deferred) Requeue(pid, d);
  if (!restoreErr && park) restoreErr = Park(pid);
  if (failure.what) ThrowErrno(env, failure.err, std::string(failure.what) + "(" + std::to_string(pid) + ", " + describe() + ")");
  if (restoreErr) ThrowErrno(env, restoreErr, Call("ptrace(PTRACE_SETREGS)", pid));
}

// park=false skips re-parking in an event stop: for a restore stub, which dies with us
// anyway (PTRACE_O_EXITKILL), the extra stop buys nothing and costs a round trip.
static bool ParkArg(const Napi::CallbackInfo& info, size_t at) {
  return info.Length() > at && !info[at].IsUndefined() ? info[at].ToBoolean().Value() : true;
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
  int64_t result = 0;
  Guarded(env, pid, ParkArg(info, 4), [&](const user_regs_struct& saved, std::vector<Deferred>& deferred) {
    result = Run(pid, saved, ip, nr, a, deferred);
  }, [&] { return "nr " + std::to_string(nr); });
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
  auto results = Napi::BigInt64Array::New(env, list.Length());
  uint32_t at = 0;
  Guarded(env, pid, ParkArg(info, 3), [&](const user_regs_struct& saved, std::vector<Deferred>& deferred) {
    for (; at < list.Length(); at++) results[at] = Run(pid, saved, ip, calls[at * 7], &calls[at * 7 + 1], deferred);
  }, [&] { return "call " + std::to_string(at) + ", nr " + std::to_string(calls[at * 7]); });
  return results;
}

// The syscall runner: code that the parasite (src/kernel/parasite.ts) copies into the
// target. rbx points to a table (a count, then per call nr and six arguments, 8 bytes each),
// r12 to where each raw rax goes (8 bytes each); it runs them in order and stops at int3.
// No stack, no absolute address: it runs wherever it is copied.
asm(R"(
  .pushsection .rodata
  .globl criu_syscall_runner
criu_syscall_runner:
  mov (%rbx), %r13
  lea 8(%rbx), %r14
1:
  test %r13, %r13
  jz 2f
  mov 0(%r14), %rax
  mov 8(%r14), %rdi
  mov 16(%r14), %rsi
  mov 24(%r14), %rdx
  mov 32(%r14), %r10
  mov 40(%r14), %r8
  mov 48(%r14), %r9
  syscall
  mov %rax, (%r12)
  add $8, %r12
  add $56, %r14
  dec %r13
  jmp 1b
2:
  int3
  .globl criu_syscall_runner_end
criu_syscall_runner_end:
  .popsection
)");
extern "C" const unsigned char criu_syscall_runner[], criu_syscall_runner_end[];

// syscallRunner() -> Buffer: the runner's machine code.
static Napi::Value SyscallRunner(const Napi::CallbackInfo& info) {
  return Napi::Buffer<uint8_t>::Copy(info.Env(), criu_syscall_runner, criu_syscall_runner_end - criu_syscall_runner);
}

// runInjected(tid, entry, trapIp, rbx, r12, park = true): runs the target's code from entry
// (PTRACE_CONT) with rbx and r12 set, until its SIGTRAP at trapIp (just past an int3). The
// thread's other registers are those it was stopped with; its stack is not touched. Signals
// that arrive meanwhile are held back as during a step; a fault throws EFAULT.
static Napi::Value RunInjected(const Napi::CallbackInfo& info) {
  RequireArgs(info, 5, "runInjected");
  int pid = I32(info[0]);
  uint64_t v[4];  // entry, trapIp, rbx, r12
  for (int i = 0; i < 4; i++) v[i] = U64(info[1 + i]);
  const uint64_t entry = v[0], trapIp = v[1], rbx = v[2], r12 = v[3];
  Napi::Env env = info.Env();
  Guarded(env, pid, ParkArg(info, 5), [&](const user_regs_struct& saved, std::vector<Deferred>& deferred) {
    user_regs_struct r = saved;
    r.rip = entry;
    r.rbx = rbx;
    r.r12 = r12;
    r.orig_rax = (unsigned long long)-1;
    if (ptrace(PTRACE_SETREGS, pid, 0, &r) == -1) throw InjectError{errno, "ptrace(PTRACE_SETREGS)"};
    for (int stops = 0;; stops++) {
      if (stops > 64) throw InjectError{EAGAIN, "injected code did not reach its trap"};
      user_regs_struct now;
      int sig = NextSignalStop(pid, PTRACE_CONT, now);
      if (sig == SIGTRAP && now.rip == trapIp) return;
      // Ours only if the kernel raised it (si_code > 0) in the code we run; a signal sent to the
      // thread meanwhile (kill -SEGV) stays pending for it like any other.
      Deferred d = TakeSignal(pid, sig);
      if (IsFault(sig) && d.haveInfo && d.info.si_code > 0 && now.rip >= entry && now.rip < trapIp) throw InjectError{EFAULT, "injected code faulted"};
      deferred.push_back(d);
    }
  }, [&] { return "code at " + std::to_string(entry); });
  return env.Undefined();
}

void InitInject(Napi::Env env, Napi::Object exports) {
  exports.Set("injectSyscall", Napi::Function::New(env, InjectSyscall, "injectSyscall"));
  exports.Set("injectSyscalls", Napi::Function::New(env, InjectSyscalls, "injectSyscalls"));
  exports.Set("syscallRunner", Napi::Function::New(env, SyscallRunner, "syscallRunner"));
  exports.Set("runInjected", Napi::Function::New(env, RunInjected, "runInjected"));
}

}  // namespace criu
