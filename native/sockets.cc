// Socket calls Node lacks on raw fds: the dump reads sockets it took out of the target with
// pidfd_getfd (names, options, queued data by MSG_PEEK, sock_diag over netlink), and the
// restore configures sockets it created inside the restored process the same way.
// Addresses and option values travel as Buffers holding the kernel's own structs; TypeScript
// builds and parses them.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common.h"

namespace criu {

// socket(domain, type, protocol) -> fd
static Napi::Value Socket(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "socket");
  int domain = I32(info[0]);
  int fd = socket(domain, I32(info[1]), I32(info[2]));
  if (fd == -1) ThrowErrno(info.Env(), errno, Call("socket", domain));
  return Napi::Number::New(info.Env(), fd);
}

// bind(fd, sockaddr)
static Napi::Value Bind(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "bind");
  int fd = I32(info[0]);
  auto addr = BufferArg(info[1], "bind");
  if (bind(fd, (const sockaddr*)addr.Data(), (socklen_t)addr.Length()) == -1) ThrowErrno(info.Env(), errno, Call("bind", fd));
  return info.Env().Undefined();
}

// connect(fd, sockaddr)
static Napi::Value Connect(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "connect");
  int fd = I32(info[0]);
  auto addr = BufferArg(info[1], "connect");
  int r;
  do r = connect(fd, (const sockaddr*)addr.Data(), (socklen_t)addr.Length());
  while (r == -1 && errno == EINTR);
  if (r == -1) ThrowErrno(info.Env(), errno, Call("connect", fd));
  return info.Env().Undefined();
}

// listen(fd, backlog)
static Napi::Value Listen(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "listen");
  int fd = I32(info[0]);
  if (listen(fd, I32(info[1])) == -1) ThrowErrno(info.Env(), errno, Call("listen", fd));
  return info.Env().Undefined();
}

// shutdown(fd, how)
static Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "shutdown");
  int fd = I32(info[0]);
  if (shutdown(fd, I32(info[1])) == -1) ThrowErrno(info.Env(), errno, Call("shutdown", fd));
  return info.Env().Undefined();
}

// getsockopt(fd, level, name, maxLen) -> Buffer trimmed to the length the kernel returned
static Napi::Value Getsockopt(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "getsockopt");
  int fd = I32(info[0]);
  int name = I32(info[2]);
  std::vector<uint8_t> buf(U64(info[3]));
  socklen_t len = (socklen_t)buf.size();
  if (getsockopt(fd, I32(info[1]), name, buf.data(), &len) == -1) ThrowErrno(info.Env(), errno, Call("getsockopt", name));
  return Napi::Buffer<uint8_t>::Copy(info.Env(), buf.data(), len);
}

// setsockopt(fd, level, name, value)
static Napi::Value Setsockopt(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "setsockopt");
  int fd = I32(info[0]);
  int name = I32(info[2]);
  auto v = BufferArg(info[3], "setsockopt");
  if (setsockopt(fd, I32(info[1]), name, v.Data(), (socklen_t)v.Length()) == -1) ThrowErrno(info.Env(), errno, Call("setsockopt", name));
  return info.Env().Undefined();
}

// getsockname(fd) / getpeername(fd) -> the sockaddr as the kernel filled it
static Napi::Value Getsockname(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "getsockname");
  int fd = I32(info[0]);
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (sockaddr*)&ss, &len) == -1) ThrowErrno(info.Env(), errno, Call("getsockname", fd));
  return Napi::Buffer<uint8_t>::Copy(info.Env(), (uint8_t*)&ss, len < sizeof ss ? len : sizeof ss);
}

static Napi::Value Getpeername(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "getpeername");
  int fd = I32(info[0]);
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, (sockaddr*)&ss, &len) == -1) ThrowErrno(info.Env(), errno, Call("getpeername", fd));
  return Napi::Buffer<uint8_t>::Copy(info.Env(), (uint8_t*)&ss, len < sizeof ss ? len : sizeof ss);
}

// send(fd, buffer, offset, len, flags) -> bytes sent
static Napi::Value Send(const Napi::CallbackInfo& info) {
  RequireArgs(info, 5, "send");
  int fd = I32(info[0]);
  auto buf = BufferArg(info[1], "send");
  uint64_t off = U64(info[2]);
  uint64_t len = U64(info[3]);
  if (off > buf.Length() || len > buf.Length() - off) ThrowErrno(info.Env(), EINVAL, Call("send", fd));
  ssize_t n;
  do n = send(fd, buf.Data() + off, len, I32(info[4]));
  while (n == -1 && errno == EINTR);
  if (n == -1) ThrowErrno(info.Env(), errno, Call("send", fd));
  return Napi::Number::New(info.Env(), (double)n);
}

// recv(fd, buffer, offset, flags) -> recv's result (with MSG_TRUNC on a datagram socket: the
// message's real length, which may exceed the room given)
static Napi::Value Recv(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "recv");
  int fd = I32(info[0]);
  auto buf = BufferArg(info[1], "recv");
  uint64_t off = U64(info[2]);
  if (off > buf.Length()) ThrowErrno(info.Env(), EINVAL, Call("recv", fd));
  ssize_t n;
  do n = recv(fd, buf.Data() + off, buf.Length() - off, I32(info[3]));
  while (n == -1 && errno == EINTR);
  if (n == -1) ThrowErrno(info.Env(), errno, Call("recv", fd));
  return Napi::Number::New(info.Env(), (double)n);
}

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("getsockopt", Napi::Function::New(env, Getsockopt, "getsockopt"));
  exports.Set("setsockopt", Napi::Function::New(env, Setsockopt, "setsockopt"));
  exports.Set("getsockname", Napi::Function::New(env, Getsockname, "getsockname"));
  exports.Set("getpeername", Napi::Function::New(env, Getpeername, "getpeername"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("recv", Napi::Function::New(env, Recv, "recv"));
}

}  // namespace criu
