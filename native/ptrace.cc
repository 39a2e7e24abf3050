// ptrace requests, one function each. A tracee belongs to the tracer *thread*: these run
// synchronously on the JS thread that called ptraceSeize, never on the libuv pool.
#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "common.h"
#include "uapi.h"

namespace criu {

static void Check(Napi::Env env, long rc, const char* req, int pid) {
  if (rc == -1) ThrowErrno(env, errno, Call(req, pid));
}

static Napi::Value Seize(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "ptraceSeize");
  int pid = I32(info[0]);
  Check(info.Env(), ptrace(PTRACE_SEIZE, pid, 0, (void*)(uintptr_t)U64(info[1])), "ptrace(PTRACE_SEIZE)", pid);
  return info.Env().Undefined();
}

static Napi::Value Interrupt(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "ptraceInterrupt");
  int pid = I32(info[0]);
  Check(info.Env(), ptrace(PTRACE_INTERRUPT, pid, 0, 0), "ptrace(PTRACE_INTERRUPT)", pid);
  return info.Env().Undefined();
}

// cont/detach/singlestep/listen share a shape: (pid, signal to deliver).
template <int Req>
static Napi::Value Resume(const Napi::CallbackInfo& info) {
  static const char* names[] = {"ptrace(PTRACE_CONT)", "ptrace(PTRACE_DETACH)", "ptrace(PTRACE_SINGLESTEP)",
                                "ptrace(PTRACE_SYSCALL)", "ptrace(PTRACE_LISTEN)"};
  const char* name = Req == PTRACE_CONT         ? names[0]
                     : Req == PTRACE_DETACH     ? names[1]
                     : Req == PTRACE_SINGLESTEP ? names[2]
                     : Req == PTRACE_SYSCALL    ? names[3]
                                                : names[4];
  RequireArgs(info, 1, name);
  int pid = I32(info[0]);
  long sig = OptI32(info, 1, 0);
  Check(info.Env(), ptrace((__ptrace_request)Req, pid, 0, (void*)sig), name, pid);
  return info.Env().Undefined();
}

static Napi::Value SetOptions(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "ptraceSetOptions");
  int pid = I32(info[0]);
  Check(info.Env(), ptrace(PTRACE_SETOPTIONS, pid, 0, (void*)(uintptr_t)U64(info[1])), "ptrace(PTRACE_SETOPTIONS)", pid);
  return info.Env().Undefined();
}

static Napi::Value GetEventMsg(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "ptraceGetEventMsg");
  int pid = I32(info[0]);
  unsigned long msg = 0;
  Check(info.Env(), ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg), "ptrace(PTRACE_GETEVENTMSG)", pid);
  return BigU64(info.Env(), msg);
}

static Napi::Value GetRegs(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "ptraceGetRegs");
  int pid = I32(info[0]);
  auto buf = Napi::Buffer<uint8_t>::New(info.Env(), sizeof(struct user_regs_struct));
  Check(info.Env(), ptrace(PTRACE_GETREGS, pid, 0, buf.Data()), "ptrace(PTRACE_GETREGS)", pid);
  return buf;
}

static Napi::Value SetRegs(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "ptraceSetRegs");
  int pid = I32(info[0]);
  auto buf = BufferArg(info[1], "ptraceSetRegs");
  if (buf.Length() != sizeof(struct user_regs_struct)) ThrowErrno(info.Env(), EINVAL, Call("ptrace(PTRACE_SETREGS) size", buf.Length()));
  Check(info.Env(), ptrace(PTRACE_SETREGS, pid, 0, buf.Data()), "ptrace(PTRACE_SETREGS)", pid);
  return info.Env().Undefined();
}

// Returns a Buffer trimmed to the size the kernel filled in.
static Napi::Value GetRegset(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "ptraceGetRegset");
  int pid = I32(info[0]);
  long nt = I32(info[1]);
  uint64_t max = U64(info[2]);
  // Bounded: a huge (or negative, i.e. huge unsigned) size would throw std::bad_alloc, which
  // node-addon-api does not catch, and abort the process. No regset comes near 1 MiB.
  if (max > (1u << 20)) ThrowErrno(info.Env(), EINVAL, Call("ptrace(PTRACE_GETREGSET) size", (long long)max));
  std::string tmp(max, '\0');
  struct iovec iov = {tmp.data(), max};
  Check(info.Env(), ptrace(PTRACE_GETREGSET, pid, (void*)nt, &iov), "ptrace(PTRACE_GETREGSET)", pid);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), (uint8_t*)tmp.data(), iov.iov_len);
}

static Napi::Value SetRegset(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "ptraceSetRegset");
  int pid = I32(info[0]);
  long nt = I32(info[1]);
  auto buf = BufferArg(info[2], "ptraceSetRegset");
  struct iovec iov = {buf.Data(), buf.Length()};
  Check(info.Env(), ptrace(PTRACE_SETREGSET, pid, (void*)nt, &iov), "ptrace(PTRACE_SETREGSET)", pid);
  return info.Env().Undefined();
}

static Napi::Value GetSigmask(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "ptraceGetSigmask");
  int pid = I32(info[0]);
  uint64_t mask = 0;
  Check(info.Env(), ptrace(PTRACE_GETSIGMASK, pid, (void*)sizeof(mask), &mask), "ptrace(PTRACE_GETSIGMASK)", pid);
  return BigU64(info.Env(), mask);
}

static Napi::Value SetSigmask(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "ptraceSetSigmask");
  int pid = I32(info[0]);
  uint64_t mask = U64(info[1]);
  Check(info.Env(), ptrace(PTRACE_SETSIGMASK, pid, (void*)sizeof(mask), &mask), "ptrace(PTRACE_SETSIGMASK)", pid);
  return info.Env().Undefined();
}

// (pid, offset, count, shared) -> Buffer of n * 128-byte siginfo_t records.
static Napi::Value PeekSiginfo(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "ptracePeekSiginfo");
  int pid = I32(info[0]);
  struct __ptrace_peeksiginfo_args args;
  args.off = U64(info[1]);
  args.nr = I32(info[2]);
  args.flags = info[3].ToBoolean().Value() ? PTRACE_PEEKSIGINFO_SHARED : 0;
  if (args.nr < 0 || args.nr > 4096) ThrowErrno(info.Env(), EINVAL, Call("ptrace(PTRACE_PEEKSIGINFO) nr", args.nr));
  std::string tmp(sizeof(siginfo_t) * (args.nr ? args.nr : 1), '\0');
  long n = ptrace(PTRACE_PEEKSIGINFO, pid, &args, tmp.data());
  Check(info.Env(), n, "ptrace(PTRACE_PEEKSIGINFO)", pid);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), (uint8_t*)tmp.data(), n * sizeof(siginfo_t));
}

static Napi::Value GetRseqConfiguration(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "ptraceGetRseqConfiguration");
  int pid = I32(info[0]);
  struct __ptrace_rseq_configuration conf;
  memset(&conf, 0, sizeof(conf));
  Check(info.Env(), ptrace((__ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid, (void*)sizeof(conf), &conf),
        "ptrace(PTRACE_GET_RSEQ_CONFIGURATION)", pid);
  auto o = Napi::Object::New(info.Env());
  o.Set("rseqAbiPointer", BigU64(info.Env(), conf.rseq_abi_pointer));
  o.Set("rseqAbiSize", Napi::Number::New(info.Env(), conf.rseq_abi_size));
  o.Set("signature", Napi::Number::New(info.Env(), conf.signature));
  o.Set("flags", Napi::Number::New(info.Env(), conf.flags));
  return o;
}

static Napi::Value Peek(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "ptracePeek");
  int pid = I32(info[0]);
  errno = 0;
  long v = ptrace(PTRACE_PEEKDATA, pid, (void*)(uintptr_t)U64(info[1]), 0);
  if (v == -1 && errno) ThrowErrno(info.Env(), errno, Call("ptrace(PTRACE_PEEKDATA)", pid));
  return BigU64(info.Env(), (uint64_t)v);
}

static Napi::Value Poke(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "ptracePoke");
  int pid = I32(info[0]);
  Check(info.Env(), ptrace(PTRACE_POKEDATA, pid, (void*)(uintptr_t)U64(info[1]), (void*)(uintptr_t)U64(info[2])),
        "ptrace(PTRACE_POKEDATA)", pid);
  return info.Env().Undefined();
}

void InitPtrace(Napi::Env env, Napi::Object exports) {
  exports.Set("ptraceSeize", Napi::Function::New(env, Seize, "ptraceSeize"));
  exports.Set("ptraceInterrupt", Napi::Function::New(env, Interrupt, "ptraceInterrupt"));
  exports.Set("ptraceCont", Napi::Function::New(env, Resume<PTRACE_CONT>, "ptraceCont"));
  exports.Set("ptraceDetach", Napi::Function::New(env, Resume<PTRACE_DETACH>, "ptraceDetach"));
  exports.Set("ptraceSinglestep", Napi::Function::New(env, Resume<PTRACE_SINGLESTEP>, "ptraceSinglestep"));
  exports.Set("ptraceSyscall", Napi::Function::New(env, Resume<PTRACE_SYSCALL>, "ptraceSyscall"));
  exports.Set("ptraceListen", Napi::Function::New(env, Resume<PTRACE_LISTEN>, "ptraceListen"));
  exports.Set("ptraceSetOptions", Napi::Function::New(env, SetOptions, "ptraceSetOptions"));
  exports.Set("ptraceGetEventMsg", Napi::Function::New(env, GetEventMsg, "ptraceGetEventMsg"));
  exports.Set("ptraceGetRegs", Napi::Function::New(env, GetRegs, "ptraceGetRegs"));
  exports.Set("ptraceSetRegs", Napi::Function::New(env, SetRegs, "ptraceSetRegs"));
  exports.Set("ptraceGetRegset", Napi::Function::New(env, GetRegset, "ptraceGetRegset"));
  exports.Set("ptraceSetRegset", Napi::Function::New(env, SetRegset, "ptraceSetRegset"));
  exports.Set("ptraceGetSigmask", Napi::Function::New(env, GetSigmask, "ptraceGetSigmask"));
  exports.Set("ptraceSetSigmask", Napi::Function::New(env, SetSigmask, "ptraceSetSigmask"));
  exports.Set("ptracePeekSiginfo", Napi::Function::New(env, PeekSiginfo, "ptracePeekSiginfo"));
  exports.Set("ptraceGetRseqConfiguration", Napi::Function::New(env, GetRseqConfiguration, "ptraceGetRseqConfiguration"));
  exports.Set("ptracePeek", Napi::Function::New(env, Peek, "ptracePeek"));
  exports.Set("ptracePoke", Napi::Function::New(env, Poke, "ptracePoke"));
}

}  // namespace criu
