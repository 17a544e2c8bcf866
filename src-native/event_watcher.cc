#include "event_watcher.h"

#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dm_task.h"
#include "js_args.h"

namespace devmapper {

namespace {

const char kControlPath[] = "/dev/mapper/control";
const char kOperation[] = "event watch";

// DM_DEV_ARM_POLL on our own open file of the control device. libdevmapper's control fd is
// shared by every call in the process (and closed by dm_lib_release), and arming is per open
// file: a private file keeps each watcher's arming its own, and needs no libdm lock.
int ArmPoll(int fd) {
  struct dm_ioctl io;
  memset(&io, 0, sizeof io);
  // Minor 0: the kernel accepts any minor up to its own; ARM_POLL needs no newer fields.
  io.version[0] = DM_VERSION_MAJOR;
  io.data_size = sizeof io;
  io.data_start = sizeof io;
  int rc;
  do {
    rc = ioctl(fd, DM_DEV_ARM_POLL, &io);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

// The device's event counter, through libdevmapper (RunTask takes the libdm lock).
bool ReadEventNr(const std::string& name, uint32_t* nr, NativeError* e) {
  TaskSpec spec;
  spec.type = DM_DEVICE_INFO;
  spec.type_name = "info";
  spec.name = name;
  spec.operation = kOperation;
  TaskResult r;
  RunTask(spec, &r, e);
  if (e->set) return false;
  if (!r.has_info || !r.info.exists) {
    e->Set(kOperation, name, ENXIO, std::string(kOperation) + " on " + name + ": no such device");
    return false;
  }
  *nr = r.info.event_nr;
  return true;
}

void SetErrno(NativeError* e, const std::string& name, int err, const std::string& what) {
  std::string msg = std::string(kOperation) + " on " + name + ": " + what + ": " + strerror(err);
  e->Set(kOperation, name, err, msg);
}

struct Update {
  bool is_error = false;
  uint32_t event_nr = 0;
  NativeError error;
  std::shared_ptr<std::atomic<bool>> stopped;
};

void CallJs(Napi::Env env, Napi::Function callback, Update* raw) {
  std::unique_ptr<Update> u(raw);
  if (env == nullptr || callback.IsEmpty() || u->stopped->load()) return;
  Napi::HandleScope scope(env);
  if (u->is_error) {
    callback.Call({MakeJsError(env, u->error), env.Null()});
  } else {
    callback.Call({env.Null(), Napi::Number::New(env, u->event_nr)});
  }
}

}  // namespace

Napi::Function EventWatcher::Define(Napi::Env env) {
  return DefineClass(env, "EventWatcher",
                     {
                         InstanceMethod("close", &EventWatcher::CloseJs),
                         InstanceAccessor("eventNr", &EventWatcher::EventNrJs, nullptr),
                         InstanceAccessor("wakeups", &EventWatcher::WakeupsJs, nullptr),
                         InstanceAccessor("deviceEvents", &EventWatcher::DeviceEventsJs, nullptr),
                         InstanceAccessor("active", &EventWatcher::ActiveJs, nullptr),
                     });
}

EventWatcher::EventWatcher(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<EventWatcher>(info), stopped_(std::make_shared<std::atomic<bool>>(false)) {
  Napi::Env env = info.Env();
  name_ = ArgString(info, 0, "name");
  if (name_.empty()) throw Napi::TypeError::New(env, "EventWatcher(name, callback): empty name");
  if (info.Length() < 2 || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "EventWatcher(name, callback): callback must be a function");

  NativeError error;
  auto fail = [&]() {
    CloseFds();
    throw Napi::Error(env, MakeJsError(env, error));
  };
  control_fd_ = open(kControlPath, O_RDWR | O_CLOEXEC);
  if (control_fd_ < 0 && errno == ENOENT) {
    // libdevmapper creates the control node on its first call when udev has not.
    uint32_t ignored;
    if (!ReadEventNr(name_, &ignored, &error)) fail();
    control_fd_ = open(kControlPath, O_RDWR | O_CLOEXEC);
  }
  if (control_fd_ < 0) {
    SetErrno(&error, name_, errno, std::string("cannot open ") + kControlPath);
    fail();
  }
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    SetErrno(&error, name_, errno, "eventfd");
    fail();
  }
  // Armed before the counter is read: an event after this read wakes the first poll.
  if (ArmPoll(control_fd_) < 0) {
    int err = errno;
    SetErrno(&error, name_, err,
             err == EINVAL || err == ENOTTY
                 ? "the kernel lacks DM_DEV_ARM_POLL (device-mapper 4.37, Linux 4.13)"
                 : "DM_DEV_ARM_POLL");
    fail();
  }
  uint32_t nr = 0;
  if (!ReadEventNr(name_, &nr, &error)) fail();
  event_nr_.store(nr);

  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(),
                                        "devmapper:event-watcher", 0, 1);
  // A watcher alone must not keep the process alive.
  tsfn_.Unref(env);
  env_ = env;
  if (napi_add_env_cleanup_hook(env, CleanupHook, this) == napi_ok) hook_added_ = true;
  running_.store(true);
  thread_ = std::thread([this] { Run(); });
}

EventWatcher::~EventWatcher() {
  Close();
}

void EventWatcher::CleanupHook(void* arg) {
  auto* self = static_cast<EventWatcher*>(arg);
  self->hook_added_ = false;
  self->Close();
}

void EventWatcher::Run() {
  uint32_t last = event_nr_.load();
  for (;;) {
    struct pollfd fds[2] = {{control_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int rc = poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      NativeError e;
      SetErrno(&e, name_, errno, "poll");
      PostError(e);
      break;
    }
    if (fds[1].revents != 0) break;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      NativeError e;
      SetErrno(&e, name_, EIO, "poll on the control device failed");
      PostError(e);
      break;
    }
    if (!(fds[0].revents & POLLIN)) continue;
    wakeups_.fetch_add(1);
    // Re-armed before the read, as at the start: nothing between the two is missed.
    if (ArmPoll(control_fd_) < 0) {
      NativeError e;
      SetErrno(&e, name_, errno, "DM_DEV_ARM_POLL");
      PostError(e);
      break;
    }
    uint32_t nr = 0;
    NativeError e;
    if (!ReadEventNr(name_, &nr, &e)) {
      PostError(e);
      break;
    }
    // Most wake-ups are other devices' events (any device's removal, for one).
    if (nr == last) continue;
    last = nr;
    event_nr_.store(nr);
    device_events_.fetch_add(1);
    PostEvent(nr);
  }
  running_.store(false);
}

void EventWatcher::PostEvent(uint32_t event_nr) {
  auto* u = new Update();
  u->event_nr = event_nr;
  u->stopped = stopped_;
  if (tsfn_.NonBlockingCall(u, CallJs) != napi_ok) delete u;
}

void EventWatcher::PostError(const NativeError& error) {
  auto* u = new Update();
  u->is_error = true;
  u->error = error;
  u->stopped = stopped_;
  if (tsfn_.NonBlockingCall(u, CallJs) != napi_ok) delete u;
}

void EventWatcher::CloseFds() {
  if (control_fd_ >= 0) close(control_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  control_fd_ = -1;
  stop_fd_ = -1;
}

void EventWatcher::Close() {
  if (closed_) return;
  closed_ = true;
  stopped_->store(true);
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t n;
    do {
      n = write(stop_fd_, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    thread_.join();
  }
  CloseFds();
  if (tsfn_) tsfn_.Release();
  if (hook_added_) {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    hook_added_ = false;
  }
}

Napi::Value EventWatcher::CloseJs(const Napi::CallbackInfo& info) {
  Close();
  return info.Env().Undefined();
}

Napi::Value EventWatcher::EventNrJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), event_nr_.load());
}

Napi::Value EventWatcher::WakeupsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(wakeups_.load()));
}

Napi::Value EventWatcher::DeviceEventsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(device_events_.load()));
}

Napi::Value EventWatcher::ActiveJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !closed_ && running_.load());
}

}  // namespace devmapper
