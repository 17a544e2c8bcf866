// Small readers for the option objects the TypeScript layer passes in. The TypeScript layer
// validates user input; these only guard against a wrong call shape from our own code.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace devmapper {

inline bool Has(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined() && !o.Get(key).IsNull();
}

inline std::string GetString(const Napi::Object& o, const char* key, const std::string& def = "") {
  if (!Has(o, key)) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline bool GetBool(const Napi::Object& o, const char* key, bool def = false) {
  if (!Has(o, key)) return def;
  return o.Get(key).ToBoolean().Value();
}

inline double GetNumber(const Napi::Object& o, const char* key, double def) {
  if (!Has(o, key)) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// A non-negative integer that fits in 53 bits (JS numbers) and in uint64_t.
inline uint64_t GetU64(const Napi::Object& o, const char* key, uint64_t def) {
  if (!Has(o, key)) return def;
  double d = GetNumber(o, key, 0);
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

inline std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
  return info[i].As<Napi::Object>();
}

}  // namespace devmapper
