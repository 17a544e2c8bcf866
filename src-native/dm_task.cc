#include "dm_task.h"

#include <libdevmapper.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "js_args.h"
#include "libdm_lock.h"
#include "promise_worker.h"
#include "udev_reaper.h"

namespace devmapper {

namespace {

const std::unordered_map<std::string, int>& TaskTypes() {
  static const std::unordered_map<std::string, int> types = {
      {"create", DM_DEVICE_CREATE},
      {"reload", DM_DEVICE_RELOAD},
      {"remove", DM_DEVICE_REMOVE},
      {"suspend", DM_DEVICE_SUSPEND},
      {"resume", DM_DEVICE_RESUME},
      {"info", DM_DEVICE_INFO},
      {"deps", DM_DEVICE_DEPS},
      {"rename", DM_DEVICE_RENAME},
      {"version", DM_DEVICE_VERSION},
      {"status", DM_DEVICE_STATUS},
      {"table", DM_DEVICE_TABLE},
      {"waitevent", DM_DEVICE_WAITEVENT},
      {"list", DM_DEVICE_LIST},
      {"clear", DM_DEVICE_CLEAR},
      {"mknodes", DM_DEVICE_MKNODES},
      {"listVersions", DM_DEVICE_LIST_VERSIONS},
      {"targetMsg", DM_DEVICE_TARGET_MSG},
  };
  return types;
}

bool TypeHasInfo(int type) {
  switch (type) {
    case DM_DEVICE_LIST:
    case DM_DEVICE_VERSION:
    case DM_DEVICE_LIST_VERSIONS:
    case DM_DEVICE_TARGET_MSG:
    case DM_DEVICE_REMOVE:
    case DM_DEVICE_MKNODES:
      return false;
    default:
      return true;
  }
}

std::string DeviceLabel(const TaskSpec& s) {
  if (!s.name.empty()) return s.name;
  if (!s.uuid.empty()) return "uuid " + s.uuid;
  if (s.major >= 0) return std::to_string(s.major) + ":" + std::to_string(s.minor);
  return "";
}

std::string FailureMessage(const TaskSpec& s, int err, const std::vector<LogLine>& logs) {
  std::string msg = s.operation.empty() ? s.type_name : s.operation;
  std::string dev = DeviceLabel(s);
  if (!dev.empty()) msg += " on " + dev;
  msg += " failed: ";
  if (err > 0) {
    msg += strerror(err);
  } else {
    // No errno: the most useful text is libdevmapper's own last error line.
    const LogLine* last = nullptr;
    for (const LogLine& l : logs)
      if (l.level <= 3) last = &l;
    msg += last ? last->message : "libdevmapper reported a failure without an errno";
  }
  return msg;
}

// Bounded wait for udev to finish with a cookie. The libdm lock is taken per poll, not for
// the whole wait, so other device-mapper calls proceed while udev works. On timeout the
// cookie's semaphore is completed and destroyed by us, so none is ever left behind.
void WaitCookie(uint32_t cookie, uint32_t timeout_ms, int log_level, TaskResult* r) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
  auto delay = std::chrono::microseconds(50);
  for (;;) {
    int ready = 0;
    int ok;
    {
      LibdmCall call(&r->logs, log_level);
      ok = dm_udev_wait_immediate(cookie, &ready);
    }
    // ok == 0: libdevmapper gave up on this cookie (and destroyed its semaphore itself).
    if (!ok || ready) return;
    if (clock::now() >= deadline) {
      LibdmCall call(&r->logs, log_level);
      dm_udev_complete(cookie);
      dm_udev_wait(cookie);
      r->udev_timed_out = true;
      return;
    }
    std::this_thread::sleep_for(delay);
    if (delay < std::chrono::milliseconds(2)) delay *= 2;
  }
}

void CollectResults(struct dm_task* dmt, const TaskSpec& spec, TaskResult* r) {
  if (TypeHasInfo(spec.type)) {
    struct dm_info info;
    if (dm_task_get_info(dmt, &info)) {
      r->has_info = true;
      r->info.exists = info.exists;
      r->info.suspended = info.suspended;
      r->info.live_table = info.live_table;
      r->info.inactive_table = info.inactive_table;
      r->info.open_count = info.open_count;
      r->info.event_nr = info.event_nr;
      r->info.major = info.major;
      r->info.minor = info.minor;
      r->info.read_only = info.read_only;
      r->info.target_count = info.target_count;
      r->info.deferred_remove = info.deferred_remove;
      r->info.internal_suspend = info.internal_suspend;
      if (info.exists) {
        const char* uuid = dm_task_get_uuid(dmt);
        if (uuid) r->uuid = uuid;
      }
    }
  }
  switch (spec.type) {
    case DM_DEVICE_STATUS:
    case DM_DEVICE_TABLE:
    case DM_DEVICE_WAITEVENT: {
      void* next = nullptr;
      do {
        uint64_t start = 0, length = 0;
        char* type = nullptr;
        char* params = nullptr;
        next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
        if (type) r->targets.push_back(TargetSpec{start, length, type, params ? params : ""});
      } while (next);
      break;
    }
    case DM_DEVICE_TARGET_MSG: {
      const char* resp = dm_task_get_message_response(dmt);
      r->has_response = true;
      r->response = resp ? resp : "";
      break;
    }
    case DM_DEVICE_DEPS: {
      struct dm_deps* deps = dm_task_get_deps(dmt);
      if (deps)
        for (uint32_t i = 0; i < deps->count; i++)
          r->deps.emplace_back(major(deps->device[i]), minor(deps->device[i]));
      break;
    }
    case DM_DEVICE_LIST: {
      struct dm_names* n = dm_task_get_names(dmt);
      if (n && n->dev) {
        uint32_t next;
        do {
          r->names.push_back(NameEntry{n->name, major(n->dev), minor(n->dev)});
          next = n->next;
          n = reinterpret_cast<struct dm_names*>(reinterpret_cast<char*>(n) + next);
        } while (next);
      }
      break;
    }
    case DM_DEVICE_LIST_VERSIONS: {
      struct dm_versions* v = dm_task_get_versions(dmt);
      if (v) {
        uint32_t next;
        do {
          r->versions.push_back(
              VersionEntry{v->name, {v->version[0], v->version[1], v->version[2]}});
          next = v->next;
          v = reinterpret_cast<struct dm_versions*>(reinterpret_cast<char*>(v) + next);
        } while (next);
      }
      break;
    }
    case DM_DEVICE_VERSION: {
      char buf[64];
      if (dm_task_get_driver_version(dmt, buf, sizeof buf)) r->driver_version = buf;
      break;
    }
    default:
      break;
  }
}

bool NodeChanging(int type) {
  return type == DM_DEVICE_CREATE || type == DM_DEVICE_RESUME || type == DM_DEVICE_REMOVE ||
         type == DM_DEVICE_RENAME || type == DM_DEVICE_MKNODES;
}

// The udev flags of the task's cookie. A reaped task leaves its /dev/mapper node to udev
// alone (DISABLE_LIBRARY_FALLBACK): libdevmapper would otherwise make it by hand the next time
// anyone in the process flushes its node stack, before udev's rules ran, and udev does not
// replace a node it did not make with its link. Only while udev sync is on: without it the
// flag would leave the device with no node at all.
uint16_t CookieFlags(const TaskSpec& s) {
  uint16_t flags = s.udev_flags;
  if (s.udev_reap && dm_udev_get_sync_support()) flags |= DM_UDEV_DISABLE_LIBRARY_FALLBACK;
  return flags;
}

// Applies the spec to the task; on a failed setter, returns its name.
const char* ConfigureTask(struct dm_task* dmt, const TaskSpec& s) {
  if (!s.name.empty() && !dm_task_set_name(dmt, s.name.c_str())) return "name";
  if (!s.uuid.empty() && !dm_task_set_uuid(dmt, s.uuid.c_str())) return "uuid";
  if (s.major >= 0 && !dm_task_set_major(dmt, s.major)) return "major";
  if (s.minor >= 0 && !dm_task_set_minor(dmt, s.minor)) return "minor";
  if (!s.new_name.empty() && !dm_task_set_newname(dmt, s.new_name.c_str())) return "newName";
  for (const TargetSpec& t : s.targets)
    if (!dm_task_add_target(dmt, t.start, t.length, t.type.c_str(), t.params.c_str()))
      return "targets";
  if (s.type == DM_DEVICE_TARGET_MSG) {
    if (!dm_task_set_sector(dmt, s.sector)) return "sector";
    if (!dm_task_set_message(dmt, s.message.c_str())) return "message";
  }
  if (s.read_only && !dm_task_set_ro(dmt)) return "readOnly";
  if (s.no_open_count && !dm_task_no_open_count(dmt)) return "noOpenCount";
  if (s.skip_lockfs && !dm_task_skip_lockfs(dmt)) return "skipLockfs";
  if (s.no_flush && !dm_task_no_flush(dmt)) return "noFlush";
  if (s.deferred_remove && !dm_task_deferred_remove(dmt)) return "deferredRemove";
  if (s.query_inactive_table && !dm_task_query_inactive_table(dmt)) return "queryInactiveTable";
  if (s.secure_data && !dm_task_secure_data(dmt)) return "secureData";
  if (s.add_node >= 0 && !dm_task_set_add_node(dmt, static_cast<dm_add_node_t>(s.add_node)))
    return "addNode";
  if (s.event_nr && !dm_task_set_event_nr(dmt, s.event_nr)) return "eventNr";
  return nullptr;
}

}  // namespace

TaskSpec TaskSpecFromJs(const Napi::Object& o) {
  Napi::Env env = o.Env();
  TaskSpec s;
  s.type_name = GetString(o, "type");
  auto it = TaskTypes().find(s.type_name);
  if (it == TaskTypes().end())
    throw Napi::TypeError::New(env, "unknown device-mapper task type '" + s.type_name + "'");
  s.type = it->second;
  s.name = GetString(o, "name");
  s.uuid = GetString(o, "uuid");
  s.new_name = GetString(o, "newName");
  if (Has(o, "major")) s.major = static_cast<int>(GetU64(o, "major", 0));
  if (Has(o, "minor")) s.minor = static_cast<int>(GetU64(o, "minor", 0));
  if (Has(o, "targets")) {
    Napi::Value v = o.Get("targets");
    if (!v.IsArray()) throw Napi::TypeError::New(env, "targets must be an array");
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value tv = arr.Get(i);
      if (!tv.IsObject()) throw Napi::TypeError::New(env, "each target must be an object");
      Napi::Object t = tv.As<Napi::Object>();
      s.targets.push_back(TargetSpec{GetU64(t, "start", 0), GetU64(t, "length", 0),
                                     GetString(t, "type"), GetString(t, "params")});
    }
  }
  s.message = GetString(o, "message");
  s.sector = GetU64(o, "sector", 0);
  s.read_only = GetBool(o, "readOnly");
  s.no_open_count = GetBool(o, "noOpenCount");
  s.skip_lockfs = GetBool(o, "skipLockfs");
  s.no_flush = GetBool(o, "noFlush");
  s.deferred_remove = GetBool(o, "deferredRemove");
  s.query_inactive_table = GetBool(o, "queryInactiveTable");
  s.secure_data = GetBool(o, "secureData");
  std::string add_node = GetString(o, "addNode");
  if (add_node == "create") {
    s.add_node = DM_ADD_NODE_ON_CREATE;
  } else if (add_node == "resume") {
    s.add_node = DM_ADD_NODE_ON_RESUME;
  } else if (!add_node.empty()) {
    throw Napi::TypeError::New(env, "addNode must be 'create' or 'resume'");
  }
  s.event_nr = static_cast<uint32_t>(GetU64(o, "eventNr", 0));
  s.use_cookie = NodeChanging(s.type) && s.type != DM_DEVICE_MKNODES && GetBool(o, "udev", true);
  s.udev_flags = static_cast<uint16_t>(GetU64(o, "udevFlags", 0) & 0xffff);
  s.udev_timeout_ms = static_cast<uint32_t>(GetU64(o, "udevTimeoutMs", 30000));
  s.udev_reap = s.use_cookie && GetBool(o, "udevReap");
  if (Has(o, "logLevel")) s.log_level = static_cast<int>(GetU64(o, "logLevel", 0) & 0xf);
  s.operation = GetString(o, "operation");
  return s;
}

namespace {

// The task itself, with the libdm lock held by the caller; the udev cookie it set (0: none)
// is left for the caller to wait on after the lock is released.
void RunLocked(const TaskSpec& spec, TaskResult* r, NativeError* e, uint32_t* cookie_out) {
  uint32_t cookie = 0;
  bool cookie_set = false;
  struct dm_task* dmt = dm_task_create(spec.type);
  if (dmt == nullptr) {
    e->Set(spec.operation, DeviceLabel(spec), ENOMEM, FailureMessage(spec, ENOMEM, r->logs));
  } else {
    const char* bad = ConfigureTask(dmt, spec);
    if (bad != nullptr) {
      e->Set(spec.operation, DeviceLabel(spec), EINVAL,
             FailureMessage(spec, EINVAL, r->logs) + " (libdevmapper refused " + bad + ")");
    } else if (spec.use_cookie && !dm_task_set_cookie(dmt, &cookie, CookieFlags(spec))) {
      e->Set(spec.operation, DeviceLabel(spec), 0,
             FailureMessage(spec, 0, r->logs) + " (could not set a udev cookie)");
    } else {
      cookie_set = spec.use_cookie;
      if (dm_task_run(dmt)) {
        CollectResults(dmt, spec, r);
      } else {
        int err = dm_task_get_errno(dmt);
        // A create with a table runs create, load and resume as sub-tasks whose errno
        // libdevmapper does not copy back; the errno it logged with the failure is the one.
        if (err == 0)
          for (const LogLine& l : r->logs)
            if (l.level <= 3 && l.err > 0) err = l.err;
        e->Set(spec.operation, DeviceLabel(spec), err, FailureMessage(spec, err, r->logs));
      }
    }
    dm_task_destroy(dmt);
  }
  // Without a udev cookie, libdevmapper has only stacked its /dev/mapper node changes:
  // apply them now, on every path, so no later caller finds a stale node. Only a task that can
  // change nodes does: the stack is process-wide, and a query flushing it would make, by
  // hand, the node of another thread's activation that udev is still about to make.
  if (cookie == 0 && NodeChanging(spec.type)) dm_task_update_nodes();
  *cookie_out = cookie_set ? cookie : 0;
}

}  // namespace

void RunTask(const TaskSpec& spec, TaskResult* r, NativeError* e) {
  // A name gets a new node only once udev is done with its previous device (a cookie the
  // reaper still holds): otherwise udev's late work on the old one could undo the new node.
  // A device is removed only once udev is done with its activation: udev's rules run for a
  // device already gone find no name in sysfs and start `dmsetup info` twice more. In the
  // sandbox kernel a Driver lifecycle cost 470-480 ms with udev's work counted (udevSettle
  // after each batch of 3), and 280-325 ms with this wait.
  if (spec.use_cookie && (spec.type == DM_DEVICE_CREATE || spec.type == DM_DEVICE_RENAME ||
                          spec.type == DM_DEVICE_REMOVE)) {
    if (!spec.name.empty()) WaitForName(spec.name);
    if (!spec.new_name.empty()) WaitForName(spec.new_name);
  }
  uint32_t cookie = 0;
  {
    LibdmCall call(&r->logs, spec.log_level);
    RunLocked(spec, r, e, &cookie);
  }
  if (cookie != 0 && spec.udev_reap) {
    ReapCookie(cookie, spec.name, spec.type == DM_DEVICE_REMOVE, spec.udev_timeout_ms);
    r->udev_reaped = true;
  } else if (cookie != 0) {
    WaitCookie(cookie, spec.udev_timeout_ms, spec.log_level, r);
  }
  r->cookie = cookie;
  if (e->set) e->logs = r->logs;
}

bool TryRunTask(const TaskSpec& spec, TaskResult* r, NativeError* e) {
  LibdmCall call(&r->logs, std::try_to_lock, spec.log_level);
  if (!call.owns()) return false;
  uint32_t cookie = 0;
  RunLocked(spec, r, e, &cookie);
  if (e->set) e->logs = r->logs;
  return true;
}

Napi::Object TaskResultToJs(Napi::Env env, const TaskSpec& spec, const TaskResult& r) {
  Napi::Object o = Napi::Object::New(env);
  if (r.has_info) {
    Napi::Object i = Napi::Object::New(env);
    i.Set("exists", r.info.exists);
    i.Set("suspended", r.info.suspended);
    i.Set("liveTable", r.info.live_table);
    i.Set("inactiveTable", r.info.inactive_table);
    i.Set("openCount", r.info.open_count);
    i.Set("eventNr", r.info.event_nr);
    i.Set("major", r.info.major);
    i.Set("minor", r.info.minor);
    i.Set("readOnly", r.info.read_only);
    i.Set("targetCount", r.info.target_count);
    i.Set("deferredRemove", r.info.deferred_remove);
    i.Set("internalSuspend", r.info.internal_suspend);
    if (r.info.exists) i.Set("uuid", r.uuid);
    o.Set("info", i);
  }
  if (spec.type == DM_DEVICE_STATUS || spec.type == DM_DEVICE_TABLE ||
      spec.type == DM_DEVICE_WAITEVENT) {
    Napi::Array a = Napi::Array::New(env, r.targets.size());
    for (size_t k = 0; k < r.targets.size(); k++) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("start", static_cast<double>(r.targets[k].start));
      t.Set("length", static_cast<double>(r.targets[k].length));
      t.Set("type", r.targets[k].type);
      t.Set("params", r.targets[k].params);
      a.Set(k, t);
    }
    o.Set("targets", a);
  }
  if (r.has_response) o.Set("response", r.response);
  if (spec.type == DM_DEVICE_DEPS) {
    Napi::Array a = Napi::Array::New(env, r.deps.size());
    for (size_t k = 0; k < r.deps.size(); k++) {
      Napi::Object d = Napi::Object::New(env);
      d.Set("major", r.deps[k].first);
      d.Set("minor", r.deps[k].second);
      a.Set(k, d);
    }
    o.Set("deps", a);
  }
  if (spec.type == DM_DEVICE_LIST) {
    Napi::Array a = Napi::Array::New(env, r.names.size());
    for (size_t k = 0; k < r.names.size(); k++) {
      Napi::Object d = Napi::Object::New(env);
      d.Set("name", r.names[k].name);
      d.Set("major", r.names[k].major);
      d.Set("minor", r.names[k].minor);
      a.Set(k, d);
    }
    o.Set("names", a);
  }
  if (spec.type == DM_DEVICE_LIST_VERSIONS) {
    Napi::Array a = Napi::Array::New(env, r.versions.size());
    for (size_t k = 0; k < r.versions.size(); k++) {
      Napi::Object d = Napi::Object::New(env);
      d.Set("name", r.versions[k].name);
      Napi::Array v = Napi::Array::New(env, 3);
      for (uint32_t j = 0; j < 3; j++) v.Set(j, r.versions[k].version[j]);
      d.Set("version", v);
      a.Set(k, d);
    }
    o.Set("versions", a);
  }
  if (spec.type == DM_DEVICE_VERSION) o.Set("driverVersion", r.driver_version);
  o.Set("udevTimedOut", r.udev_timed_out);
  o.Set("udevReaped", r.udev_reaped);
  o.Set("cookie", r.cookie);
  o.Set("logs", LogLinesToJs(env, r.logs));
  return o;
}

namespace {

class TaskWorker : public PromiseWorker {
 public:
  TaskWorker(Napi::Env env, TaskSpec spec)
      : PromiseWorker(env, "devmapper:task"), spec_(std::move(spec)) {}

 protected:
  void Run() override { RunTask(spec_, &result_, &error_); }
  Napi::Value Resolve(Napi::Env env) override { return TaskResultToJs(env, spec_, result_); }

 private:
  TaskSpec spec_;
  TaskResult result_;
};

}  // namespace

Napi::Value RunTaskJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(info.Env(), "runTask(spec): spec must be an object");
  auto* worker = new TaskWorker(info.Env(), TaskSpecFromJs(info[0].As<Napi::Object>()));
  return worker->Queue();
}

Napi::Value RunTaskSyncJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "runTaskSync(spec): spec must be an object");
  TaskSpec spec = TaskSpecFromJs(info[0].As<Napi::Object>());
  TaskResult result;
  NativeError error;
  RunTask(spec, &result, &error);
  if (error.set) throw Napi::Error(env, MakeJsError(env, error));
  return TaskResultToJs(env, spec, result);
}

Napi::Value TryRunTaskSyncJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "tryRunTaskSync(spec): spec must be an object");
  TaskSpec spec = TaskSpecFromJs(info[0].As<Napi::Object>());
  // A cookie would mean waiting for udev on the JS thread: only queries come this way.
  if (spec.use_cookie)
    throw Napi::TypeError::New(env, "tryRunTaskSync: only tasks without a udev cookie");
  TaskResult result;
  NativeError error;
  if (!TryRunTask(spec, &result, &error)) return env.Null();
  if (error.set) throw Napi::Error(env, MakeJsError(env, error));
  return TaskResultToJs(env, spec, result);
}

}  // namespace devmapper
