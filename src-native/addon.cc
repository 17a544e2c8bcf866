// Module entry: registers the exported functions and the per-environment state.
#include <libdevmapper.h>
#include <napi.h>

#include "addon_data.h"
#include "dm_task.h"
#include "event_watcher.h"
#include "libdm_lock.h"
#include "step_plan.h"
#include "sys_ops.h"

namespace devmapper {

AddonData* GetAddonData(Napi::Env env) {
  return env.GetInstanceData<AddonData>();
}

namespace {

// setErrorClass(DevmapperError): the TypeScript error class the addon throws.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction())
    throw Napi::TypeError::New(info.Env(), "setErrorClass(cls): cls must be a class");
  GetAddonData(info.Env())->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value SetLogLevel(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "setLogLevel(level): level must be a number");
  SetLibdmLogLevel(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value GetLogLevel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GetLibdmLogLevel());
}

Napi::Value LibraryVersion(const Napi::CallbackInfo& info) {
  char buf[64] = {0};
  std::vector<LogLine> logs;
  {
    LibdmCall call(&logs);
    if (!dm_get_library_version(buf, sizeof buf)) buf[0] = 0;
  }
  return Napi::String::New(info.Env(), buf);
}

// Whether libdevmapper will synchronise with udev (udevd running, semaphores available,
// not disabled by DM_DISABLE_UDEV).
Napi::Value UdevSyncSupported(const Napi::CallbackInfo& info) {
  std::vector<LogLine> logs;
  int supported;
  {
    LibdmCall call(&logs);
    supported = dm_udev_get_sync_support();
  }
  return Napi::Boolean::New(info.Env(), supported != 0);
}

Napi::Value CookieSupported(const Napi::CallbackInfo& info) {
  std::vector<LogLine> logs;
  int supported;
  {
    LibdmCall call(&logs);
    supported = dm_cookie_supported();
  }
  return Napi::Boolean::New(info.Env(), supported != 0);
}

Napi::Object UdevFlags(Napi::Env env) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("DISABLE_DM_RULES", DM_UDEV_DISABLE_DM_RULES_FLAG);
  f.Set("DISABLE_SUBSYSTEM_RULES", DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG);
  f.Set("DISABLE_DISK_RULES", DM_UDEV_DISABLE_DISK_RULES_FLAG);
  f.Set("DISABLE_OTHER_RULES", DM_UDEV_DISABLE_OTHER_RULES_FLAG);
  f.Set("LOW_PRIORITY", DM_UDEV_LOW_PRIORITY_FLAG);
  f.Set("DISABLE_LIBRARY_FALLBACK", DM_UDEV_DISABLE_LIBRARY_FALLBACK);
  f.Set("PRIMARY_SOURCE", DM_UDEV_PRIMARY_SOURCE_FLAG);
  return f;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitLibdmLogging();
  env.SetInstanceData(new AddonData());

  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("setLogLevel", Napi::Function::New(env, SetLogLevel, "setLogLevel"));
  exports.Set("getLogLevel", Napi::Function::New(env, GetLogLevel, "getLogLevel"));
  exports.Set("runTask", Napi::Function::New(env, RunTaskJs, "runTask"));
  exports.Set("runTaskSync", Napi::Function::New(env, RunTaskSyncJs, "runTaskSync"));
  exports.Set("tryRunTaskSync", Napi::Function::New(env, TryRunTaskSyncJs, "tryRunTaskSync"));
  exports.Set("runSteps", Napi::Function::New(env, RunStepsJs, "runSteps"));
  exports.Set("EventWatcher", EventWatcher::Define(env));
  exports.Set("libraryVersion", Napi::Function::New(env, LibraryVersion, "libraryVersion"));
  exports.Set("udevSyncSupported",
              Napi::Function::New(env, UdevSyncSupported, "udevSyncSupported"));
  exports.Set("cookieSupported", Napi::Function::New(env, CookieSupported, "cookieSupported"));
  exports.Set("loopAttach", Napi::Function::New(env, LoopAttachJs, "loopAttach"));
  exports.Set("loopDetach", Napi::Function::New(env, LoopDetachJs, "loopDetach"));
  exports.Set("loopSetCapacity", Napi::Function::New(env, LoopSetCapacityJs, "loopSetCapacity"));
  exports.Set("loopFind", Napi::Function::New(env, LoopFindJs, "loopFind"));
  exports.Set("loopStatus", Napi::Function::New(env, LoopStatusJs, "loopStatus"));
  exports.Set("blockDeviceSize", Napi::Function::New(env, BlockDeviceSizeJs, "blockDeviceSize"));
  exports.Set("blockDiscard", Napi::Function::New(env, BlockDiscardJs, "blockDiscard"));
  exports.Set("mount", Napi::Function::New(env, MountJs, "mount"));
  exports.Set("umount", Napi::Function::New(env, UmountJs, "umount"));
  exports.Set("isMountPoint", Napi::Function::New(env, IsMountPointJs, "isMountPoint"));
  exports.Set("lgetxattr", Napi::Function::New(env, LgetxattrJs, "lgetxattr"));
  exports.Set("lsetxattr", Napi::Function::New(env, LsetxattrJs, "lsetxattr"));
  exports.Set("lremovexattr", Napi::Function::New(env, LremovexattrJs, "lremovexattr"));
  exports.Set("llistxattr", Napi::Function::New(env, LlistxattrJs, "llistxattr"));
  exports.Set("mknod", Napi::Function::New(env, MknodJs, "mknod"));
  exports.Set("lutimesNs", Napi::Function::New(env, LutimesNsJs, "lutimesNs"));
  exports.Set("readFiles", Napi::Function::New(env, ReadFilesJs, "readFiles"));
  exports.Set("lockFile", Napi::Function::New(env, LockFileJs, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, UnlockFileJs, "unlockFile"));
  exports.Set("mountFlags", MountConstants(env));
  exports.Set("udevFlags", UdevFlags(env));
  return exports;
}

}  // namespace devmapper

static Napi::Object InitDevmapper(Napi::Env env, Napi::Object exports) {
  return devmapper::Init(env, exports);
}

NODE_API_MODULE(devmapper, InitDevmapper)
