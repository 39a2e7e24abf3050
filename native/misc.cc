// Small calls Node lacks: poll on raw fds (the lazy server's wait), perf_event_open (counting
// a process's syscalls), the uapi constants the TypeScript side needs, page size.
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common.h"
#include "uapi.h"

namespace criu {

// poll(fds, events, timeoutMs) -> revents per fd (0 when nothing happened).
static Napi::Value Poll(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "poll");
  auto fds = ArrayArg(info[0], "poll");
  auto events = ArrayArg(info[1], "poll");
  if (events.Length() != fds.Length()) ThrowErrno(info.Env(), EINVAL, Call("poll events", events.Length()));
  std::vector<struct pollfd> p(fds.Length());
  for (uint32_t i = 0; i < p.size(); i++) {
    p[i].fd = I32(fds.Get(i));
    p[i].events = (short)I32(events.Get(i));
    p[i].revents = 0;
  }
  int r;
  do r = poll(p.data(), p.size(), I32(info[2]));
  while (r == -1 && errno == EINTR);
  if (r == -1) ThrowErrno(info.Env(), errno, Call("poll", (long long)p.size()));
  auto out = Napi::Array::New(info.Env(), p.size());
  for (uint32_t i = 0; i < p.size(); i++) out.Set(i, Napi::Number::New(info.Env(), p[i].revents));
  return out;
}

// perfEventOpen(attr, pid, cpu, groupFd, flags) -> fd; attr is a struct perf_event_attr
// whose size field the caller set (the kernel reads that many bytes).
static Napi::Value PerfEventOpen(const Napi::CallbackInfo& info) {
  RequireArgs(info, 5, "perfEventOpen");
  auto attr = BufferArg(info[0], "perfEventOpen");
  int pid = I32(info[1]);
  long fd = syscall(SYS_perf_event_open, attr.Data(), pid, I32(info[2]), I32(info[3]), (unsigned long)U64(info[4]));
  if (fd == -1) ThrowErrno(info.Env(), errno, Call("perf_event_open", pid));
  return Napi::Number::New(info.Env(), fd);
}

void InitMisc(Napi::Env env, Napi::Object exports) {
  exports.Set("poll", Napi::Function::New(env, Poll, "poll"));
  exports.Set("perfEventOpen", Napi::Function::New(env, PerfEventOpen, "perfEventOpen"));
  auto c = Napi::Object::New(env);
  c.Set("PAGEMAP_SCAN", Napi::Number::New(env, (double)PAGEMAP_SCAN));
  c.Set("pageSize", Napi::Number::New(env, sysconf(_SC_PAGESIZE)));
  c.Set("uffdMsgSize", Napi::Number::New(env, sizeof(struct uffd_msg)));
  c.Set("pageRegionSize", Napi::Number::New(env, sizeof(struct page_region)));
  c.Set("userRegsSize", Napi::Number::New(env, 27 * 8));
  exports.Set("constants", c);
}

}  // namespace criu
