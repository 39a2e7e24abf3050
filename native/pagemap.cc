// PAGEMAP_SCAN on an open /proc/PID/pagemap fd. One ioctl per call; the loop (bounded
// batches, the stale walk_end) lives in src/kernel/pagemap.ts. Synchronous, and an async
// form for scanning parts of a range in parallel.
#include <sys/ioctl.h>

#include <cerrno>

#include "common.h"
#include "uapi.h"

namespace criu {

static uint64_t Field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? 0 : U64(v);
}

// pagemapScan(fd, {start, end, flags, categoryInverted, categoryMask, categoryAnyofMask,
//                  returnMask, maxPages}, vec: Buffer of 24-byte page_region records)
//   -> {count, walkEnd}
static struct pm_scan_arg ScanArg(const Napi::CallbackInfo& info, const char* fn, Napi::Buffer<uint8_t>* vecOut) {
  RequireArgs(info, 3, fn);
  auto o = ObjectArg(info[1], fn);
  auto vec = BufferArg(info[2], fn);
  struct pm_scan_arg a;
  a.size = sizeof(a);
  a.flags = Field(o, "flags");
  a.start = Field(o, "start");
  a.end = Field(o, "end");
  a.walk_end = 0;
  a.vec = (uint64_t)(uintptr_t)vec.Data();
  a.vec_len = vec.Length() / sizeof(struct page_region);
  a.max_pages = Field(o, "maxPages");
  a.category_inverted = Field(o, "categoryInverted");
  a.category_mask = Field(o, "categoryMask");
  a.category_anyof_mask = Field(o, "categoryAnyofMask");
  a.return_mask = Field(o, "returnMask");
  if (vecOut) *vecOut = vec;
  return a;
}

static Napi::Object ScanResult(Napi::Env env, int n, const struct pm_scan_arg& a) {
  auto r = Napi::Object::New(env);
  r.Set("count", Napi::Number::New(env, n));
  r.Set("walkEnd", Napi::Number::New(env, (double)a.walk_end));
  return r;
}

static Napi::Value Scan(const Napi::CallbackInfo& info) {
  struct pm_scan_arg a = ScanArg(info, "pagemapScan", nullptr);
  int n = ioctl(I32(info[0]), PAGEMAP_SCAN, &a);
  if (n == -1) ThrowErrno(info.Env(), errno, CallAt("ioctl(PAGEMAP_SCAN)", a.start));
  return ScanResult(info.Env(), n, a);
}

// The same ioctl on the libuv pool: a VMA's written pages are scanned in slices, two at once,
// one per core (the page-table walk is most of a frozen dump's fixed cost).
class ScanWorker : public Napi::AsyncWorker {
 public:
  ScanWorker(Napi::Env env, int fd, struct pm_scan_arg a, Napi::Buffer<uint8_t> vec)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), a_(a) {
    keep_ = Napi::Persistent(vec);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    n_ = ioctl(fd_, PAGEMAP_SCAN, &a_);
    if (n_ == -1) err_ = errno;
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (err_) deferred_.Reject(ErrnoError(Env(), err_, CallAt("ioctl(PAGEMAP_SCAN)", a_.start)).Value());
    else deferred_.Resolve(ScanResult(Env(), n_, a_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  struct pm_scan_arg a_;
  Napi::Reference<Napi::Buffer<uint8_t>> keep_;
  int n_ = 0;
  int err_ = 0;
};

static Napi::Value ScanAsync(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> vec;
  struct pm_scan_arg a = ScanArg(info, "pagemapScanAsync", &vec);
  auto* w = new ScanWorker(info.Env(), I32(info[0]), a, vec);
  auto p = w->Promise();
  w->Queue();
  return p;
}

void InitPagemap(Napi::Env env, Napi::Object exports) {
  exports.Set("pagemapScan", Napi::Function::New(env, Scan, "pagemapScan"));
  exports.Set("pagemapScanAsync", Napi::Function::New(env, ScanAsync, "pagemapScanAsync"));
}

}  // namespace criu
