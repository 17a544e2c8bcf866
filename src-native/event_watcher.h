// A watcher of one device-mapper device's events (dm_table_event: a thin pool crossing its
// low-water mark, changing mode, ...), on a thread of its own rather than the libuv pool,
// which it would otherwise hold for as long as it watches.
//
// The thread sleeps in poll(2) on a private file of /dev/mapper/control, armed with
// DM_DEV_ARM_POLL (Linux 4.13+), and on an eventfd that close() writes to stop it. Any dm
// event in the system wakes it; it then reads the device's event counter (a libdm info
// call, under the libdm lock) and calls JavaScript only when that counter moved.
//
// JS: new EventWatcher(name, callback(err, eventNr)), .close(), .eventNr, .wakeups,
//     .deviceEvents, .active
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "native_error.h"

namespace devmapper {

class EventWatcher : public Napi::ObjectWrap<EventWatcher> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit EventWatcher(const Napi::CallbackInfo& info);
  ~EventWatcher() override;

 private:
  Napi::Value CloseJs(const Napi::CallbackInfo& info);
  Napi::Value EventNrJs(const Napi::CallbackInfo& info);
  Napi::Value WakeupsJs(const Napi::CallbackInfo& info);
  Napi::Value DeviceEventsJs(const Napi::CallbackInfo& info);
  Napi::Value ActiveJs(const Napi::CallbackInfo& info);

  // Stops and joins the thread, closes both fds, releases the callback. Idempotent.
  void Close();
  void Run();
  void PostEvent(uint32_t event_nr);
  void PostError(const NativeError& error);
  void CloseFds();
  static void CleanupHook(void* arg);

  std::string name_;
  int control_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  napi_env env_ = nullptr;
  bool hook_added_ = false;
  bool closed_ = false;
  // Shared with queued callbacks, so that none reaches JavaScript after close().
  std::shared_ptr<std::atomic<bool>> stopped_;
  std::atomic<bool> running_{false};
  std::atomic<uint32_t> event_nr_{0};
  std::atomic<uint64_t> wakeups_{0};
  std::atomic<uint64_t> device_events_{0};
};

}  // namespace devmapper
