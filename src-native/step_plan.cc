#include "step_plan.h"

#include <libdevmapper.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "dm_task.h"
#include "js_args.h"
#include "promise_worker.h"
#include "sys_calls.h"
#include "udev_reaper.h"

namespace devmapper {

namespace {

enum class StepKind {
  kTask,
  kWriteFile,
  kCreateFile,
  kSyncDir,
  kUnlink,
  kMount,
  kUmount,
  kMkdir,
  kRmdir,
  kDiscard,
  kCrash
};

struct Step {
  StepKind kind = StepKind::kTask;
  TaskSpec task;
  std::string path;    // file, directory or mount target
  std::string data;    // file contents, or mount data
  std::string source;  // mount source
  std::string fstype;
  // mount source / discard target: this device-mapper device (see DevicePath), else `source`/`path`
  std::string dm_name;
  uint32_t flags = 0;   // mount / umount2 flags
  uint32_t mode = 0;    // file or directory mode
  uint64_t offset = 0;  // discard: byte range
  uint64_t length = 0;
  // discard: when set, the thin device's status task asked first; nothing mapped, no discard.
  bool has_unless_unmapped = false;
  TaskSpec unless_unmapped;
  std::vector<int> ok_errnos;
  bool always = false;
  std::string operation;
};

struct StepResult {
  bool ran = false;
  bool skipped = false;  // ran and found nothing to do (a thin device with nothing mapped)
  int err = 0;           // a tolerated errno (0: the call succeeded)
  uint64_t ns = 0;
  bool has_task = false;
  TaskResult task;
};

StepKind KindFromJs(Napi::Env env, const std::string& k) {
  if (k == "task") return StepKind::kTask;
  if (k == "writeFile") return StepKind::kWriteFile;
  if (k == "createFile") return StepKind::kCreateFile;
  if (k == "syncDir") return StepKind::kSyncDir;
  if (k == "unlink") return StepKind::kUnlink;
  if (k == "mount") return StepKind::kMount;
  if (k == "umount") return StepKind::kUmount;
  if (k == "mkdir") return StepKind::kMkdir;
  if (k == "rmdir") return StepKind::kRmdir;
  if (k == "discard") return StepKind::kDiscard;
  if (k == "crash") return StepKind::kCrash;
  throw Napi::TypeError::New(env, "unknown step kind '" + k + "'");
}

Step StepFromJs(const Napi::Object& o) {
  Napi::Env env = o.Env();
  Step s;
  s.kind = KindFromJs(env, GetString(o, "kind"));
  if (s.kind == StepKind::kTask) {
    Napi::Value t = o.Get("task");
    if (!t.IsObject()) throw Napi::TypeError::New(env, "a task step needs a task object");
    s.task = TaskSpecFromJs(t.As<Napi::Object>());
  }
  s.path = GetString(o, "path");
  if (s.kind != StepKind::kTask && s.kind != StepKind::kCrash && s.path.empty())
    throw Napi::TypeError::New(env, "a " + GetString(o, "kind") + " step needs a path");
  s.data = GetString(o, "data");
  s.source = GetString(o, "source");
  s.fstype = GetString(o, "fstype");
  s.dm_name = GetString(o, "dmName");
  s.flags = static_cast<uint32_t>(GetU64(o, "flags", 0));
  s.mode = static_cast<uint32_t>(GetU64(o, "mode", 0600));
  s.offset = GetU64(o, "offset", 0);
  s.length = GetU64(o, "length", 0);
  if (Has(o, "unlessUnmapped")) {
    Napi::Value t = o.Get("unlessUnmapped");
    if (!t.IsObject()) throw Napi::TypeError::New(env, "unlessUnmapped must be a task object");
    s.unless_unmapped = TaskSpecFromJs(t.As<Napi::Object>());
    s.has_unless_unmapped = true;
  }
  if (Has(o, "okErrnos")) {
    Napi::Value v = o.Get("okErrnos");
    if (!v.IsArray()) throw Napi::TypeError::New(env, "okErrnos must be an array");
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value n = a.Get(i);
      if (!n.IsNumber()) throw Napi::TypeError::New(env, "okErrnos must hold numbers");
      s.ok_errnos.push_back(n.As<Napi::Number>().Int32Value());
    }
  }
  s.always = GetBool(o, "always");
  s.operation = GetString(o, "operation");
  return s;
}

// The step's own name for its call, else the call's.
std::string Op(const Step& s, const char* call) {
  return s.operation.empty() ? call : s.operation;
}

// Whether a thin target's status line ("<mapped sectors> <highest mapped sector|->", or
// "Fail", "Error", "-") says nothing is mapped, or that there is nothing to discard through.
bool ThinHasNothingMapped(const TaskResult& status) {
  if (status.targets.size() != 1) return true;
  const std::string& p = status.targets[0].params;
  char* end = nullptr;
  errno = 0;
  unsigned long long mapped = strtoull(p.c_str(), &end, 10);
  if (end == p.c_str() || errno != 0) return true;
  return mapped == 0;
}

// What a job learnt of its devices: major:minor by device-mapper name, from its tasks' info.
using DeviceNumbers = std::unordered_map<std::string, std::pair<uint32_t, uint32_t>>;

// The block device to open for device-mapper device `name`. /dev/mapper/NAME once udev is done
// with it (or without udev: libdevmapper made the node). While the reaper still holds one of
// its cookies, udev may not have made /dev/mapper/NAME yet, but devtmpfs made /dev/dm-MINOR
// when the kernel created the device: that one. Without devtmpfs (a container's /dev), the
// cookies are waited for after all.
std::string DevicePath(const std::string& name, const DeviceNumbers& known, NativeError* e) {
  const std::string mapper = "/dev/mapper/" + name;
  if (!NamePending(name)) return mapper;
  std::pair<uint32_t, uint32_t> dev;
  auto it = known.find(name);
  if (it != known.end()) {
    dev = it->second;
  } else {
    TaskSpec info;
    info.type = DM_DEVICE_INFO;
    info.type_name = "info";
    info.name = name;
    info.operation = "info";
    TaskResult r;
    RunTask(info, &r, e);
    if (e->set) return "";
    if (!r.has_info || !r.info.exists) return mapper;  // gone: let the caller's call say so
    dev = {r.info.major, r.info.minor};
  }
  const std::string node = "/dev/dm-" + std::to_string(dev.second);
  struct stat st;
  if (stat(node.c_str(), &st) == 0 && S_ISBLK(st.st_mode) &&
      st.st_rdev == makedev(dev.first, dev.second))
    return node;
  WaitForName(name);
  return mapper;
}

}  // namespace

std::string UsableDevicePath(const std::string& name, NativeError* e) {
  return DevicePath(name, DeviceNumbers(), e);
}

namespace {

void RunStep(const Step& s, StepResult* r, NativeError* e, const DeviceNumbers& known) {
  switch (s.kind) {
    case StepKind::kTask:
      r->has_task = true;
      RunTask(s.task, &r->task, e);
      return;
    case StepKind::kWriteFile:
      return sys::WriteFileAtomic(Op(s, "write"), s.path, s.data, s.mode, e);
    case StepKind::kCreateFile:
      return sys::CreateFile(Op(s, "create"), s.path, s.data, s.mode, e);
    case StepKind::kSyncDir:
      return sys::SyncDir(Op(s, "sync directory"), s.path, e);
    case StepKind::kUnlink:
      return sys::Unlink(Op(s, "unlink"), s.path, e);
    case StepKind::kMount: {
      std::string source = s.dm_name.empty() ? s.source : DevicePath(s.dm_name, known, e);
      if (e->set) return;
      return sys::Mount(Op(s, "mount"), source, s.path, s.fstype, s.flags, s.data, e);
    }
    case StepKind::kUmount:
      return sys::Umount(Op(s, "umount"), s.path, static_cast<int>(s.flags), e);
    case StepKind::kMkdir:
      return sys::Mkdir(Op(s, "mkdir"), s.path, s.mode, e);
    case StepKind::kRmdir:
      return sys::Rmdir(Op(s, "rmdir"), s.path, e);
    case StepKind::kDiscard:
      if (s.has_unless_unmapped) {
        // A discard of a thin device with no mapped block would only walk its empty range.
        RunTask(s.unless_unmapped, &r->task, e);
        // The result carries the status task's outcome only when it succeeded: a failed
        // step without one failed in its query, one with it in its discard.
        if (e->set) return;
        // libdevmapper answers a status of a missing device with "does not exist", not ENXIO.
        if (r->task.has_info && !r->task.info.exists)
          return e->Set(s.unless_unmapped.operation, s.unless_unmapped.name, ENXIO,
                        s.unless_unmapped.operation + " on " + s.unless_unmapped.name +
                            " failed: " + strerror(ENXIO));
        r->has_task = true;
        if (ThinHasNothingMapped(r->task)) {
          r->skipped = true;
          return;
        }
      }
      {
        DeviceNumbers with_status = known;
        if (r->has_task && r->task.has_info && r->task.info.exists)
          with_status[s.dm_name] = {r->task.info.major, r->task.info.minor};
        std::string target = s.dm_name.empty() ? s.path : DevicePath(s.dm_name, with_status, e);
        if (e->set) return;
        return sys::Discard(Op(s, "discard"), target, s.offset, s.length, e);
      }
    case StepKind::kCrash:
      // A crash-safety test's power cut at this exact point of the sequence. It models a crash
      // of the metadata sequence, not one while udev still works on the process's devices:
      // that one leaves its cookies' semaphores to the sweep at the next open (tested on its
      // own), so udev is let finish first (each cookie within its own bound).
      SettleCookies(60000);
      kill(getpid(), SIGKILL);
      for (;;) pause();
  }
}

struct Outcome {
  std::vector<StepResult> results;
  int failed = -1;
  NativeError error;
};

class StepsWorker : public PromiseWorker {
 public:
  StepsWorker(Napi::Env env, std::vector<Step> steps, bool timed)
      : PromiseWorker(env, "devmapper:steps"), steps_(std::move(steps)), timed_(timed) {}

 protected:
  void Run() override {
    out_.results.resize(steps_.size());
    for (size_t i = 0; i < steps_.size(); i++) {
      const Step& s = steps_[i];
      if (out_.failed >= 0 && !s.always) continue;
      StepResult& r = out_.results[i];
      NativeError e;
      // Timed only when asked (someone listens to the operation records): where the clock is a
      // system call (user-mode Linux has no vDSO), two reads a step cost more than a message.
      std::chrono::steady_clock::time_point t0;
      if (timed_) t0 = std::chrono::steady_clock::now();
      RunStep(s, &r, &e, known_);
      if (timed_)
        r.ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count());
      r.ran = true;
      if (s.kind == StepKind::kTask && r.task.has_info && r.task.info.exists &&
          !s.task.name.empty())
        known_[s.task.name] = {r.task.info.major, r.task.info.minor};
      if (!e.set) continue;
      if (std::find(s.ok_errnos.begin(), s.ok_errnos.end(), e.err) != s.ok_errnos.end()) {
        r.err = e.err;
        continue;
      }
      if (out_.failed < 0) {
        out_.failed = static_cast<int>(i);
        out_.error = e;
      }
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array a = Napi::Array::New(env, out_.results.size());
    for (size_t i = 0; i < out_.results.size(); i++) {
      const StepResult& r = out_.results[i];
      Napi::Object x = Napi::Object::New(env);
      x.Set("ran", r.ran);
      if (r.skipped) x.Set("skipped", true);
      x.Set("errno", r.err);
      x.Set("ns", static_cast<double>(r.ns));
      if (r.has_task && r.ran) {
        const TaskSpec& spec =
            steps_[i].kind == StepKind::kTask ? steps_[i].task : steps_[i].unless_unmapped;
        x.Set("task", TaskResultToJs(env, spec, r.task));
      }
      a.Set(i, x);
    }
    o.Set("results", a);
    o.Set("failedStep", out_.failed);
    o.Set("error", out_.failed >= 0 ? MakeJsError(env, out_.error) : env.Null());
    return o;
  }

 private:
  std::vector<Step> steps_;
  Outcome out_;
  DeviceNumbers known_;
  bool timed_;
};

}  // namespace

Napi::Value RunStepsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(env, "runSteps(steps, timed): steps must be an array");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<Step> steps;
  steps.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "each step must be an object");
    steps.push_back(StepFromJs(v.As<Napi::Object>()));
  }
  bool timed = info.Length() >= 2 && info[1].ToBoolean().Value();
  return (new StepsWorker(env, std::move(steps), timed))->Queue();
}

}  // namespace devmapper
