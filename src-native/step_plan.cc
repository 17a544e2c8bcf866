#include "step_plan.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dm_task.h"
#include "js_args.h"
#include "promise_worker.h"

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
  kCrash
};

struct Step {
  StepKind kind = StepKind::kTask;
  TaskSpec task;
  std::string path;    // file, directory or mount target
  std::string data;    // file contents, or mount data
  std::string source;  // mount source
  std::string fstype;
  uint32_t flags = 0;  // mount / umount2 flags
  uint32_t mode = 0;   // file or directory mode
  std::vector<int> ok_errnos;
  bool always = false;
  std::string operation;
};

struct StepResult {
  bool ran = false;
  int err = 0;  // a tolerated errno (0: the call succeeded)
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
  s.flags = static_cast<uint32_t>(GetU64(o, "flags", 0));
  s.mode = static_cast<uint32_t>(GetU64(o, "mode", 0600));
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

void SetSysError(NativeError* e, const Step& s, const char* call, int err) {
  std::string op = s.operation.empty() ? call : s.operation;
  e->Set(op, s.path, err, op + " " + s.path + ": " + call + ": " + strerror(err));
}

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// Replaces the file atomically: a ".tmp<random>" file beside it (as Docker named its
// temporary files), written, fsynced and renamed over the target. On failure the target is
// as it was and no temporary file is left. The directory is synced by a syncDir step.
void WriteFileAtomic(const Step& s, NativeError* e) {
  thread_local std::mt19937 rng{std::random_device{}()};
  size_t slash = s.path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : s.path.substr(0, slash == 0 ? 1 : slash);
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    temp = dir + "/.tmp" + std::to_string(rng());
    fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, s.mode);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return SetSysError(e, s, "create temporary file", errno);
  const char* failed = nullptr;
  if (!WriteAll(fd, s.data)) {
    failed = "write";
  } else if (fsync(fd) < 0) {
    failed = "fsync";
  }
  int err = errno;
  if (close(fd) < 0 && failed == nullptr) {
    failed = "close";
    err = errno;
  }
  if (failed == nullptr && rename(temp.c_str(), s.path.c_str()) < 0) {
    failed = "rename";
    err = errno;
  }
  if (failed != nullptr) {
    unlink(temp.c_str());
    SetSysError(e, s, failed, err);
  }
}

// A new file (EEXIST when it exists), with exactly `mode` whatever the umask; not synced.
void CreateFile(const Step& s, NativeError* e) {
  int fd = open(s.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, s.mode);
  if (fd < 0) return SetSysError(e, s, "create", errno);
  const char* failed = nullptr;
  if (fchmod(fd, s.mode) < 0) {
    failed = "fchmod";
  } else if (!WriteAll(fd, s.data)) {
    failed = "write";
  }
  int err = errno;
  if (close(fd) < 0 && failed == nullptr) {
    failed = "close";
    err = errno;
  }
  if (failed != nullptr) {
    unlink(s.path.c_str());
    SetSysError(e, s, failed, err);
  }
}

void SyncDir(const Step& s, NativeError* e) {
  int fd = open(s.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SetSysError(e, s, "open directory", errno);
  if (fsync(fd) < 0) {
    int err = errno;
    close(fd);
    return SetSysError(e, s, "fsync directory", err);
  }
  close(fd);
}

void RunStep(const Step& s, StepResult* r, NativeError* e) {
  switch (s.kind) {
    case StepKind::kTask:
      r->has_task = true;
      RunTask(s.task, &r->task, e);
      return;
    case StepKind::kWriteFile:
      return WriteFileAtomic(s, e);
    case StepKind::kCreateFile:
      return CreateFile(s, e);
    case StepKind::kSyncDir:
      return SyncDir(s, e);
    case StepKind::kUnlink:
      if (unlink(s.path.c_str()) < 0) SetSysError(e, s, "unlink", errno);
      return;
    case StepKind::kMount:
      if (mount(s.source.c_str(), s.path.c_str(), s.fstype.empty() ? nullptr : s.fstype.c_str(),
                s.flags, s.data.empty() ? nullptr : s.data.c_str()) < 0) {
        int err = errno;
        std::string op = s.operation.empty() ? "mount" : s.operation;
        e->Set(
            op, s.source, err,
            "mount " + s.source + " on " + s.path + " (" + s.fstype + ") failed: " + strerror(err));
      }
      return;
    case StepKind::kUmount:
      if (umount2(s.path.c_str(), static_cast<int>(s.flags)) < 0) {
        int err = errno;
        e->Set(s.operation.empty() ? "umount" : s.operation, s.path, err,
               "umount " + s.path + " failed: " + strerror(err));
      }
      return;
    case StepKind::kMkdir:
      // The mode exactly, whatever the umask (as mkdir + chmod).
      if (mkdir(s.path.c_str(), s.mode) < 0) {
        SetSysError(e, s, "mkdir", errno);
      } else if (chmod(s.path.c_str(), s.mode) < 0) {
        SetSysError(e, s, "chmod", errno);
      }
      return;
    case StepKind::kRmdir:
      if (rmdir(s.path.c_str()) < 0) SetSysError(e, s, "rmdir", errno);
      return;
    case StepKind::kCrash:
      // A crash-safety test's power cut at this exact point of the sequence.
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
  StepsWorker(Napi::Env env, std::vector<Step> steps)
      : PromiseWorker(env, "devmapper:steps"), steps_(std::move(steps)) {}

 protected:
  void Run() override {
    out_.results.resize(steps_.size());
    for (size_t i = 0; i < steps_.size(); i++) {
      const Step& s = steps_[i];
      if (out_.failed >= 0 && !s.always) continue;
      StepResult& r = out_.results[i];
      NativeError e;
      auto t0 = std::chrono::steady_clock::now();
      RunStep(s, &r, &e);
      r.ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - t0)
                                       .count());
      r.ran = true;
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
      x.Set("errno", r.err);
      x.Set("ns", static_cast<double>(r.ns));
      if (r.has_task && r.ran) x.Set("task", TaskResultToJs(env, steps_[i].task, r.task));
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
};

}  // namespace

Napi::Value RunStepsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(env, "runSteps(steps): steps must be an array");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<Step> steps;
  steps.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "each step must be an object");
    steps.push_back(StepFromJs(v.As<Napi::Object>()));
  }
  return (new StepsWorker(env, std::move(steps)))->Queue();
}

}  // namespace devmapper
