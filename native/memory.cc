// process_vm_readv / process_vm_writev between one local Buffer and many remote ranges.
// (pid, buffer, bufferOffset, ranges: [addr, len, addr, len, ...]) -> bytes moved. ranges may
// be a Float64Array: read in one go, where an Array costs several N-API calls a number (a
// final dump passes two numbers a page, thousands of pages, while the process is frozen).
// The local side is contiguous: ranges fill the buffer in order from bufferOffset.
// A short count means the range at that point is unmapped or unreadable (the kernel stops
// at the first failing remote iovec); the caller decides what that means.
// The Async form runs on the libuv pool, so the dump can read the next batch while the
// event loop hands the last one to the compressors. It keeps the buffer alive until done.
#include <sys/uio.h>

#include <cerrno>
#include <vector>

#include "common.h"

namespace criu {

struct Transfer {
  int pid = 0;
  bool write = false;
  std::vector<struct iovec> remote;
  struct iovec local = {nullptr, 0};
};

static Transfer Prepare(const Napi::CallbackInfo& info, bool write, const char* fn) {
  RequireArgs(info, 4, fn);
  Transfer t;
  t.pid = I32(info[0]);
  t.write = write;
  auto buf = BufferArg(info[1], fn);
  size_t off = U64(info[2]);
  size_t total = 0;
  auto add = [&](uint64_t addr, uint64_t len) {
    t.remote.push_back({(void*)(uintptr_t)addr, (size_t)len});
    total += len;
  };
  if (info[3].IsTypedArray()) {
    if (info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) ThrowErrno(info.Env(), EINVAL, std::string(fn) + ": ranges must be an Array or a Float64Array");
    auto f = info[3].As<Napi::Float64Array>();
    size_t n = f.ElementLength();
    if (n % 2 || off > buf.Length()) ThrowErrno(info.Env(), EINVAL, Call(fn, t.pid));
    t.remote.reserve(n / 2);
    for (size_t i = 0; i < n; i += 2) {
      // Addresses and lengths are whole and below 2^53: exact as doubles; anything else is a caller's bug.
      if (!(f[i] >= 0) || !(f[i + 1] >= 0)) ThrowErrno(info.Env(), EINVAL, Call(fn, t.pid));  // NaN too
      add((uint64_t)f[i], (uint64_t)f[i + 1]);
    }
  } else {
    auto ranges = ArrayArg(info[3], fn);
    uint32_t n = ranges.Length();
    if (n % 2 || off > buf.Length()) ThrowErrno(info.Env(), EINVAL, Call(fn, t.pid));
    for (uint32_t i = 0; i < n; i += 2) add(U64(ranges.Get(i)), U64(ranges.Get(i + 1)));
  }
  if (total > buf.Length() - off) ThrowErrno(info.Env(), ENOBUFS, Call(fn, t.pid));
  t.local = {buf.Data() + off, total};
  return t;
}

static ssize_t Move(const Transfer& t) {
  if (t.write) return process_vm_writev(t.pid, &t.local, 1, t.remote.data(), t.remote.size(), 0);
  return process_vm_readv(t.pid, &t.local, 1, t.remote.data(), t.remote.size(), 0);
}

template <bool Write>
static Napi::Value Sync(const Napi::CallbackInfo& info) {
  const char* fn = Write ? "process_vm_writev" : "process_vm_readv";
  Transfer t = Prepare(info, Write, fn);
  ssize_t n = Move(t);
  if (n == -1) ThrowErrno(info.Env(), errno, Call(fn, t.pid));
  return Napi::Number::New(info.Env(), (double)n);
}

class TransferWorker : public Napi::AsyncWorker {
 public:
  TransferWorker(Napi::Env env, Transfer t, Napi::Object buffer)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), t_(std::move(t)) {
    keep_ = Napi::Persistent(buffer);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    n_ = Move(t_);
    if (n_ == -1) err_ = errno;
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    const char* fn = t_.write ? "process_vm_writev" : "process_vm_readv";
    if (err_) deferred_.Reject(ErrnoError(Env(), err_, Call(fn, t_.pid)).Value());
    else deferred_.Resolve(Napi::Number::New(Env(), (double)n_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Transfer t_;
  Napi::ObjectReference keep_;
  ssize_t n_ = 0;
  int err_ = 0;
};

template <bool Write>
static Napi::Value Async(const Napi::CallbackInfo& info) {
  const char* fn = Write ? "process_vm_writev" : "process_vm_readv";
  Transfer t = Prepare(info, Write, fn);
  auto* w = new TransferWorker(info.Env(), std::move(t), info[1].As<Napi::Object>());
  auto p = w->Promise();
  w->Queue();
  return p;
}

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("processVmReadv", Napi::Function::New(env, Sync<false>, "processVmReadv"));
  exports.Set("processVmWritev", Napi::Function::New(env, Sync<true>, "processVmWritev"));
  exports.Set("processVmReadvAsync", Napi::Function::New(env, Async<false>, "processVmReadvAsync"));
  exports.Set("processVmWritevAsync", Napi::Function::New(env, Async<true>, "processVmWritevAsync"));
}

}  // namespace criu
