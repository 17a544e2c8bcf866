// Base for every asynchronous call: Run() executes on the libuv pool and touches only plain
// C++ members (never a JS value); Resolve() builds the JS result on the JS thread. Failures
// are recorded in error_ and reject the promise with a DevmapperError.
#pragma once

#include <napi.h>

#include "native_error.h"

namespace devmapper {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* resource_name)
      : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Queue() {
    Napi::Promise p = deferred_.Promise();
    Napi::AsyncWorker::Queue();
    return p;
  }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Resolve(Napi::Env env) = 0;

  NativeError error_;

 private:
  void Execute() override { Run(); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (error_.set) {
      deferred_.Reject(MakeJsError(env, error_));
      return;
    }
    try {
      deferred_.Resolve(Resolve(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
};

}  // namespace devmapper

#include <functional>
#include <utility>

namespace devmapper {

// A PromiseWorker from two functions: `run` off the JS thread filling a plain result R,
// `resolve` on the JS thread turning R into a JS value.
template <typename R>
class FnWorker : public PromiseWorker {
 public:
  using RunFn = std::function<void(R*, NativeError*)>;
  using ResolveFn = std::function<Napi::Value(Napi::Env, const R&)>;

  FnWorker(Napi::Env env, const char* name, RunFn run, ResolveFn resolve)
      : PromiseWorker(env, name), run_(std::move(run)), resolve_(std::move(resolve)) {}

  static Napi::Promise Start(Napi::Env env, const char* name, RunFn run, ResolveFn resolve) {
    auto* w = new FnWorker<R>(env, name, std::move(run), std::move(resolve));
    return w->Queue();
  }

 protected:
  void Run() override { run_(&result_, &error_); }
  Napi::Value Resolve(Napi::Env env) override { return resolve_(env, result_); }

 private:
  RunFn run_;
  ResolveFn resolve_;
  R result_{};
};

}  // namespace devmapper
