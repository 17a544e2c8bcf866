// The one generic device-mapper task runner: a plain description of a dm_task (TaskSpec),
// run off the JS thread under the libdm lock, with the results copied out (TaskResult)
// before the dm_task is destroyed. No dm_task handle ever reaches JavaScript.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "native_error.h"

namespace devmapper {

struct TargetSpec {
  uint64_t start = 0;   // sectors
  uint64_t length = 0;  // sectors
  std::string type;
  std::string params;
};

struct TaskSpec {
  int type = 0;  // DM_DEVICE_*
  std::string type_name;
  std::string name;
  std::string uuid;
  std::string new_name;
  int major = -1;
  int minor = -1;
  std::vector<TargetSpec> targets;
  std::string message;
  uint64_t sector = 0;
  bool read_only = false;
  bool no_open_count = false;
  bool skip_lockfs = false;
  bool no_flush = false;
  bool deferred_remove = false;
  bool query_inactive_table = false;
  bool secure_data = false;
  int add_node = -1;  // DM_ADD_NODE_ON_CREATE / DM_ADD_NODE_ON_RESUME, -1 = library default
  uint32_t event_nr = 0;
  bool use_cookie = false;  // create, resume, remove and rename carry a udev cookie
  uint16_t udev_flags = 0;
  uint32_t udev_timeout_ms = 30000;
  bool udev_reap = false;  // hand the cookie to the reaper (udev_reaper.h) instead of waiting
  int log_level = -1;      // libdm lines captured beyond errors; -1: the process's level
  std::string operation;   // for error messages: "create_thin 5", "activate", ...
};

struct InfoResult {
  bool exists = false;
  bool suspended = false;
  bool live_table = false;
  bool inactive_table = false;
  int32_t open_count = 0;
  uint32_t event_nr = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
  bool read_only = false;
  int32_t target_count = 0;
  bool deferred_remove = false;
  bool internal_suspend = false;
};

struct NameEntry {
  std::string name;
  uint32_t major;
  uint32_t minor;
};

struct VersionEntry {
  std::string name;
  uint32_t version[3];
};

struct TaskResult {
  bool has_info = false;
  InfoResult info;
  std::string uuid;
  std::vector<TargetSpec> targets;
  bool has_response = false;
  std::string response;
  std::vector<std::pair<uint32_t, uint32_t>> deps;
  std::vector<NameEntry> names;
  std::vector<VersionEntry> versions;
  std::string driver_version;
  bool udev_timed_out = false;
  bool udev_reaped = false;  // the cookie went to the reaper: udev may still be at work
  uint32_t cookie = 0;
  std::vector<LogLine> logs;
};

// Reads a TaskSpec from the JS object (throws TypeError/RangeError on a wrong shape).
TaskSpec TaskSpecFromJs(const Napi::Object& o);

// Runs the task; fills result or error. Safe to call from any thread.
void RunTask(const TaskSpec& spec, TaskResult* result, NativeError* error);

// The same, but only if the libdm lock is free right now (returns false without running
// otherwise), and without any udev wait: for cookie-less queries on the JS thread.
bool TryRunTask(const TaskSpec& spec, TaskResult* result, NativeError* error);

Napi::Object TaskResultToJs(Napi::Env env, const TaskSpec& spec, const TaskResult& r);

// JS: runTask(spec) -> Promise<result>
Napi::Value RunTaskJs(const Napi::CallbackInfo& info);
// JS: runTaskSync(spec) -> result (throws DevmapperError); for cheap queries where a thread
// hop would cost more than the ioctl.
Napi::Value RunTaskSyncJs(const Napi::CallbackInfo& info);
// JS: tryRunTaskSync(spec) -> result, or null when another thread holds the libdm lock (the
// caller then hops instead of blocking the event loop behind that thread's ioctl).
Napi::Value TryRunTaskSyncJs(const Napi::CallbackInfo& info);

}  // namespace devmapper
