// Per-environment state (main thread or a worker thread each get their own), freed by
// Node when that environment is torn down.
#pragma once

#include <napi.h>

namespace devmapper {

struct AddonData {
  // DevmapperError, the class defined in TypeScript, handed over once by lib/native.ts.
  Napi::FunctionReference error_class;
};

AddonData* GetAddonData(Napi::Env env);

}  // namespace devmapper
