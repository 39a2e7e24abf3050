// PAGEMAP_SCAN on an open /proc/PID/pagemap fd. One ioctl per call; the loop (bounded
// batches, the stale walk_end) lives in src/kernel/pagemap.ts. Synchronous: a scan is
// milliseconds even for GiBs (arming 8 GiB: ~0.1 s), and the caller usually needs its
// answer before doing anything else.
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
static Napi::Value Scan(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "pagemapScan");
  int fd = I32(info[0]);
  auto o = ObjectArg(info[1], "pagemapScan");
  auto vec = BufferArg(info[2], "pagemapScan");
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
  int n = ioctl(fd, PAGEMAP_SCAN, &a);
  if (n == -1) ThrowErrno(info.Env(), errno, CallAt("ioctl(PAGEMAP_SCAN)", a.start));
  auto r = Napi::Object::New(info.Env());
  r.Set("count", Napi::Number::New(info.Env(), n));
  r.Set("walkEnd", Napi::Number::New(info.Env(), (double)a.walk_end));
  return r;
}

void InitPagemap(Napi::Env env, Napi::Object exports) {
  exports.Set("pagemapScan", Napi::Function::New(env, Scan, "pagemapScan"));
}

}  // namespace criu
