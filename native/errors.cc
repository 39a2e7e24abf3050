#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common.h"

namespace criu {

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& call) {
  std::string msg = call + ": " + strerror(err) + " (" + ErrnoName(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, call));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const std::string& call) {
  throw ErrnoError(env, err, call);
}

[[noreturn]] static void ThrowEinval(Napi::Env env, const std::string& what) {
  ThrowErrno(env, EINVAL, what);
}

uint64_t U64(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0) return static_cast<uint64_t>(static_cast<int64_t>(d));
    return static_cast<uint64_t>(d);
  }
  ThrowEinval(v.Env(), "argument: expected number or bigint");
}

int64_t I64(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (v.IsNumber()) return v.As<Napi::Number>().Int64Value();
  ThrowEinval(v.Env(), "argument: expected number or bigint");
}

int32_t I32(const Napi::Value& v) {
  if (v.IsNumber()) return v.As<Napi::Number>().Int32Value();
  if (v.IsBigInt()) return static_cast<int32_t>(I64(v));
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  ThrowEinval(v.Env(), "argument: expected number");
}

Napi::Value BigU64(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }
Napi::Value BigI64(Napi::Env env, int64_t v) { return Napi::BigInt::New(env, v); }

void RequireArgs(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  if (info.Length() < n) ThrowEinval(info.Env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments");
}

int32_t OptI32(const Napi::CallbackInfo& info, size_t i, int32_t def) {
  return info.Length() > i && !info[i].IsUndefined() ? I32(info[i]) : def;
}

uint64_t OptU64(const Napi::CallbackInfo& info, size_t i, uint64_t def) {
  return info.Length() > i && !info[i].IsUndefined() ? U64(info[i]) : def;
}

Napi::Buffer<uint8_t> BufferArg(const Napi::Value& v, const char* fn) {
  if (!v.IsBuffer()) ThrowEinval(v.Env(), std::string(fn) + ": expected a Buffer");
  return v.As<Napi::Buffer<uint8_t>>();
}

Napi::Array ArrayArg(const Napi::Value& v, const char* fn) {
  if (!v.IsArray()) ThrowEinval(v.Env(), std::string(fn) + ": expected an array");
  return v.As<Napi::Array>();
}

Napi::Object ObjectArg(const Napi::Value& v, const char* fn) {
  if (!v.IsObject()) ThrowEinval(v.Env(), std::string(fn) + ": expected an object");
  return v.As<Napi::Object>();
}

std::string StringArg(const Napi::Value& v, const char* fn) {
  if (!v.IsString()) ThrowEinval(v.Env(), std::string(fn) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string Call(const char* name, long long arg) { return std::string(name) + "(" + std::to_string(arg) + ")"; }

std::string CallAt(const char* name, uint64_t addr) {
  char hex[24];
  snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)addr);
  return std::string(name) + "(" + hex + ")";
}

// errnoName(n) lets TypeScript name raw -errno results of injected syscalls the same way.
static Napi::Value JsErrnoName(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "errnoName");
  return Napi::String::New(info.Env(), ErrnoName(I32(info[0])));
}

static Napi::Value JsStrerror(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "strerror");
  return Napi::String::New(info.Env(), strerror(I32(info[0])));
}

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("errnoName", Napi::Function::New(env, JsErrnoName, "errnoName"));
  exports.Set("strerror", Napi::Function::New(env, JsStrerror, "strerror"));
}

}  // namespace criu
