#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "js_args.h"
#include "native_error.h"
#include "promise_worker.h"
#include "sys_calls.h"
#include "sys_ops.h"

namespace devmapper {

Napi::Value MountJs(const Napi::CallbackInfo& info) {
  std::string source = ArgString(info, 0, "source");
  std::string target = ArgString(info, 1, "target");
  std::string fstype = ArgString(info, 2, "fstype");
  if (info.Length() < 4 || !info[3].IsNumber())
    throw Napi::TypeError::New(info.Env(), "flags must be a number");
  unsigned long flags = info[3].As<Napi::Number>().Uint32Value();
  std::string data =
      info.Length() > 4 && info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  return FnWorker<int>::Start(
      info.Env(), "devmapper:mount",
      [=](int*, NativeError* e) { sys::Mount("mount", source, target, fstype, flags, data, e); },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value UmountJs(const Napi::CallbackInfo& info) {
  std::string target = ArgString(info, 0, "target");
  int flags = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  return FnWorker<int>::Start(
      info.Env(), "devmapper:umount",
      [=](int*, NativeError* e) { sys::Umount("umount", target, flags, e); },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

namespace {

// A DevmapperError like every other failure of the addon: its code is the errno's name.
[[noreturn]] void ThrowStatxError(Napi::Env env, const std::string& path, const std::string& what,
                                  int err) {
  NativeError e;
  e.Set("statx", path, err, "statx " + what + ": " + strerror(err));
  throw Napi::Error(env, MakeJsError(env, e));
}

}  // namespace

Napi::Value IsMountPointJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  struct statx sx;
  if (statx(AT_FDCWD, path.c_str(), AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &sx) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Napi::Boolean::New(info.Env(), false);
    ThrowStatxError(info.Env(), path, path, errno);
  }
  if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
    return Napi::Boolean::New(info.Env(), (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0);
  // Kernels before 5.8 do not report the attribute: a different device than the parent's.
  struct statx parent;
  if (statx(AT_FDCWD, (path + "/..").c_str(), AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &parent) < 0)
    ThrowStatxError(info.Env(), path, path + "/..", errno);
  return Napi::Boolean::New(info.Env(), sx.stx_dev_major != parent.stx_dev_major ||
                                            sx.stx_dev_minor != parent.stx_dev_minor);
}

Napi::Object MountConstants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("MS_RDONLY", static_cast<double>(MS_RDONLY));
  c.Set("MS_NOSUID", static_cast<double>(MS_NOSUID));
  c.Set("MS_NODEV", static_cast<double>(MS_NODEV));
  c.Set("MS_NOEXEC", static_cast<double>(MS_NOEXEC));
  c.Set("MS_SYNCHRONOUS", static_cast<double>(MS_SYNCHRONOUS));
  c.Set("MS_REMOUNT", static_cast<double>(MS_REMOUNT));
  c.Set("MS_NOATIME", static_cast<double>(MS_NOATIME));
  c.Set("MS_NODIRATIME", static_cast<double>(MS_NODIRATIME));
  c.Set("MS_BIND", static_cast<double>(MS_BIND));
  c.Set("MS_REC", static_cast<double>(MS_REC));
  c.Set("MS_PRIVATE", static_cast<double>(MS_PRIVATE));
  c.Set("MS_SLAVE", static_cast<double>(MS_SLAVE));
  c.Set("MS_SHARED", static_cast<double>(MS_SHARED));
  c.Set("MS_RELATIME", static_cast<double>(MS_RELATIME));
  c.Set("MNT_FORCE", static_cast<double>(MNT_FORCE));
  c.Set("MNT_DETACH", static_cast<double>(MNT_DETACH));
  c.Set("MNT_EXPIRE", static_cast<double>(MNT_EXPIRE));
  c.Set("UMOUNT_NOFOLLOW", static_cast<double>(UMOUNT_NOFOLLOW));
  return c;
}

}  // namespace devmapper
