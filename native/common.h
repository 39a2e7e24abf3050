// Shared helpers for the addon: errno errors and argument decoding.
// Every failing call throws an Error with `code` (errno name), `errno` and `syscall`
// (the call and its main argument), so TypeScript can branch on `code`.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace criu {

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& call);
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& call);
const char* ErrnoName(int err);

// Numbers arrive as JS numbers or BigInts; addresses and masks may exceed 2^53.
uint64_t U64(const Napi::Value& v);
int64_t I64(const Napi::Value& v);
int32_t I32(const Napi::Value& v);
Napi::Value BigU64(Napi::Env env, uint64_t v);
Napi::Value BigI64(Napi::Env env, int64_t v);
void RequireArgs(const Napi::CallbackInfo& info, size_t n, const char* fn);
// Optional trailing arguments: absent or `undefined` gives `def` (TypeScript's `x?: number`
// lets a caller pass undefined explicitly).
int32_t OptI32(const Napi::CallbackInfo& info, size_t i, int32_t def);
uint64_t OptU64(const Napi::CallbackInfo& info, size_t i, uint64_t def);
// Typed arguments: a wrong type throws EINVAL like any bad argument, never an Error without
// a code (which is what node-addon-api's unchecked As<>() gives).
Napi::Buffer<uint8_t> BufferArg(const Napi::Value& v, const char* fn);
Napi::Array ArrayArg(const Napi::Value& v, const char* fn);
Napi::Object ObjectArg(const Napi::Value& v, const char* fn);
std::string StringArg(const Napi::Value& v, const char* fn);

// "name(arg)" for error messages.
std::string Call(const char* name, long long arg);
// "name(0xADDR)": calls whose main argument is an address in the target.
std::string CallAt(const char* name, uint64_t addr);

void InitErrors(Napi::Env env, Napi::Object exports);
void InitPtrace(Napi::Env env, Napi::Object exports);
void InitInject(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitPidfd(Napi::Env env, Napi::Object exports);
void InitUffd(Napi::Env env, Napi::Object exports);
void InitPagemap(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitMisc(Napi::Env env, Napi::Object exports);
void InitFdops(Napi::Env env, Napi::Object exports);
void InitSockets(Napi::Env env, Napi::Object exports);
void InitFdkinds(Napi::Env env, Napi::Object exports);

}  // namespace criu
