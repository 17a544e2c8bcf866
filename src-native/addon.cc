// Module entry: registers the exported functions and the per-environment state.
#include <libdevmapper.h>
#include <napi.h>

#include <mutex>

#include "addon_data.h"
#include "dm_task.h"
#include "event_watcher.h"
#include "libdm_lock.h"
#include "promise_worker.h"
#include "step_plan.h"
#include "sys_ops.h"
#include "udev_reaper.h"

namespace devmapper {

AddonData* GetAddonData(Napi::Env env) {
  return env.GetInstanceData<AddonData>();
}

namespace {

Napi::Object ReaperStatsToJs(Napi::Env env, const ReaperStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pending", static_cast<double>(s.pending));
  o.Set("reaped", static_cast<double>(s.reaped));
  o.Set("timedOut", static_cast<double>(s.timed_out));
  return o;
}

// udevReaperStats(): { pending, reaped, timedOut } of the cookies handed to the reaper.
Napi::Value UdevReaperStatsJs(const Napi::CallbackInfo& info) {
  return ReaperStatsToJs(info.Env(), GetReaperStats());
}

// udevSettle(timeoutMs): resolves with the stats once no reaped cookie is pending, or at the
// timeout.
Napi::Value UdevSettleJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "udevSettle(timeoutMs): timeoutMs must be a number");
  double ms = info[0].As<Napi::Number>().DoubleValue();
  uint32_t timeout = ms <= 0 ? 0 : ms >= 4294967295.0 ? 4294967295u : static_cast<uint32_t>(ms);
  return FnWorker<ReaperStats>::Start(
      info.Env(), "devmapper:udevSettle",
      [timeout](ReaperStats* r, NativeError*) { *r = SettleCookies(timeout); },
      [](Napi::Env env, const ReaperStats& r) -> Napi::Value { return ReaperStatsToJs(env, r); });
}

// udevWaitName(name): resolves once no reaped cookie of device `name` is pending.
Napi::Value UdevWaitNameJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(info.Env(), "udevWaitName(name): name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return FnWorker<bool>::Start(
      info.Env(), "devmapper:udevWaitName",
      [name](bool* r, NativeError*) {
        WaitForName(name);
        *r = true;
      },
      [](Napi::Env env, const bool&) -> Napi::Value { return env.Undefined(); });
}

// usableDevicePath(name): resolves with the path to open device `name` by now (see step_plan.h).
Napi::Value UsableDevicePathJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(info.Env(), "usableDevicePath(name): name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return FnWorker<std::string>::Start(
      info.Env(), "devmapper:usableDevicePath",
      [name](std::string* r, NativeError* e) { *r = UsableDevicePath(name, e); },
      [](Napi::Env env, const std::string& r) -> Napi::Value { return Napi::String::New(env, r); });
}

// sweepAbandonedUdevCookies(minAgeSeconds): how many abandoned cookie semaphores were destroyed.
Napi::Value SweepAbandonedCookiesJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "sweepAbandonedUdevCookies(minAgeSeconds): a number");
  double s = info[0].As<Napi::Number>().DoubleValue();
  uint32_t age = s <= 0 ? 0 : s >= 4294967295.0 ? 4294967295u : static_cast<uint32_t>(s);
  return Napi::Number::New(info.Env(), SweepAbandonedCookies(age));
}

// The reaper is one per process; it stops (completing what is pending) when the last
// environment that loaded the addon goes.
std::mutex envs_mu;
int envs = 0;

void ReleaseReaper(void*) {
  std::lock_guard<std::mutex> lk(envs_mu);
  if (--envs == 0) ShutdownReaper();
}

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
  {
    std::lock_guard<std::mutex> lk(envs_mu);
    envs++;
  }
  napi_add_env_cleanup_hook(env, ReleaseReaper, nullptr);

  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("setLogLevel", Napi::Function::New(env, SetLogLevel, "setLogLevel"));
  exports.Set("getLogLevel", Napi::Function::New(env, GetLogLevel, "getLogLevel"));
  exports.Set("runTask", Napi::Function::New(env, RunTaskJs, "runTask"));
  exports.Set("runTaskSync", Napi::Function::New(env, RunTaskSyncJs, "runTaskSync"));
  exports.Set("tryRunTaskSync", Napi::Function::New(env, TryRunTaskSyncJs, "tryRunTaskSync"));
  exports.Set("runSteps", Napi::Function::New(env, RunStepsJs, "runSteps"));
  exports.Set("udevSettle", Napi::Function::New(env, UdevSettleJs, "udevSettle"));
  exports.Set("sweepAbandonedUdevCookies",
              Napi::Function::New(env, SweepAbandonedCookiesJs, "sweepAbandonedUdevCookies"));
  exports.Set("udevWaitName", Napi::Function::New(env, UdevWaitNameJs, "udevWaitName"));
  exports.Set("usableDevicePath", Napi::Function::New(env, UsableDevicePathJs, "usableDevicePath"));
  exports.Set("udevReaperStats", Napi::Function::New(env, UdevReaperStatsJs, "udevReaperStats"));
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
