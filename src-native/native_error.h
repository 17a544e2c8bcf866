// A failure recorded off the JS thread, turned into a JS DevmapperError on the JS thread.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "libdm_lock.h"

namespace devmapper {

struct NativeError {
  bool set = false;
  std::string message;
  int err = 0;  // errno, 0 when none was given
  std::string operation;
  std::string device;
  std::vector<LogLine> logs;

  void Set(std::string op, std::string dev, int errnum, std::string msg) {
    set = true;
    operation = std::move(op);
    device = std::move(dev);
    err = errnum;
    message = std::move(msg);
  }
};

// Builds `new DevmapperError(message, { errno, operation, device, logs })`; falls back to a
// plain Error with the same properties when the class was not registered.
Napi::Value MakeJsError(Napi::Env env, const NativeError& e);

Napi::Array LogLinesToJs(Napi::Env env, const std::vector<LogLine>& logs);

// Throws synchronously (for argument errors found on the JS thread).
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace devmapper
