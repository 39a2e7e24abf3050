// Entry point: each family of syscalls registers its functions.
#include "common.h"

namespace criu {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitErrors(env, exports);
  InitPtrace(env, exports);
  InitInject(env, exports);
  InitMemory(env, exports);
  InitPidfd(env, exports);
  InitUffd(env, exports);
  InitPagemap(env, exports);
  InitProcess(env, exports);
  InitMisc(env, exports);
  InitFdops(env, exports);
  InitSockets(env, exports);
  InitFdkinds(env, exports);
  return exports;
}

}  // namespace criu

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return criu::Init(env, exports); }

NODE_API_MODULE(criu_native, InitAll)
