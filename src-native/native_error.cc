#include "native_error.h"

#include "addon_data.h"

namespace devmapper {

Napi::Array LogLinesToJs(Napi::Env env, const std::vector<LogLine>& logs) {
  Napi::Array arr = Napi::Array::New(env, logs.size());
  for (size_t i = 0; i < logs.size(); i++) {
    const LogLine& l = logs[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("level", l.level);
    if (!l.file.empty()) {
      o.Set("file", l.file);
      o.Set("line", l.line);
    }
    o.Set("errno", l.err);
    o.Set("message", l.message);
    arr.Set(i, o);
  }
  return arr;
}

Napi::Value MakeJsError(Napi::Env env, const NativeError& e) {
  Napi::Object opts = Napi::Object::New(env);
  if (e.err > 0) opts.Set("errno", e.err);
  if (!e.operation.empty()) opts.Set("operation", e.operation);
  if (!e.device.empty()) opts.Set("device", e.device);
  opts.Set("logs", LogLinesToJs(env, e.logs));

  AddonData* data = GetAddonData(env);
  if (data != nullptr && !data->error_class.IsEmpty()) {
    return data->error_class.New({Napi::String::New(env, e.message), opts});
  }
  Napi::Error err = Napi::Error::New(env, e.message);
  Napi::Object obj = err.Value();
  Napi::Array names = opts.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value k = names.Get(i);
    obj.Set(k, opts.Get(k));
  }
  return obj;
}

void ThrowTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

}  // namespace devmapper
