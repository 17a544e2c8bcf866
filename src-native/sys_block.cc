#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "js_args.h"
#include "promise_worker.h"
#include "sys_calls.h"
#include "sys_ops.h"

namespace devmapper {

namespace {

uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

}  // namespace

Napi::Value BlockDeviceSizeJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  return FnWorker<uint64_t>::Start(
      info.Env(), "devmapper:blockDeviceSize",
      [=](uint64_t* size, NativeError* e) {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
          return e->Set("block size", path, errno,
                        "block size of " + path + ": " + strerror(errno));
        if (ioctl(fd, BLKGETSIZE64, size) < 0)
          e->Set("block size", path, errno, "BLKGETSIZE64 on " + path + ": " + strerror(errno));
        close(fd);
      },
      [](Napi::Env env, const uint64_t& size) -> Napi::Value {
        return Napi::Number::New(env, static_cast<double>(size));
      });
}

Napi::Value BlockDiscardJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  uint64_t offset = ArgU64(info, 1, "offsetBytes");
  uint64_t length = ArgU64(info, 2, "lengthBytes");
  return FnWorker<int>::Start(
      info.Env(), "devmapper:blockDiscard",
      [=](int*, NativeError* e) { sys::Discard("discard", path, offset, length, e); },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

}  // namespace devmapper
