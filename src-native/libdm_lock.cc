#include "libdm_lock.h"

#include <libdevmapper.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace devmapper {

namespace {

std::mutex libdm_mutex;
std::vector<LogLine>* current_sink = nullptr;  // guarded by libdm_mutex
std::atomic<int> capture_level{5};
int call_level = -1;  // guarded by libdm_mutex: the running call's own level, -1 for none
std::once_flag logging_once;

void CaptureLog(int level, const char* file, int line, int dm_errno_or_class, const char* f, ...) {
  // For error and warning lines, libdevmapper passes -1 to mean "the C errno": read it
  // before anything here can change it.
  const int saved_errno = errno;
  // libdevmapper ORs flags (_LOG_STDERR, _LOG_ONCE) above the level bits.
  level &= 0x0f;
  // Error lines are always kept, whatever the level: a failed call's errno may come only
  // from them (see RunTask). The level decides about warnings, notices and debug lines.
  if (current_sink == nullptr) return;
  const int max_level =
      call_level >= 0 ? call_level : capture_level.load(std::memory_order_relaxed);
  if (level > 3 && level > max_level) return;
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  if (n < 0) return;
  int err = 0;
  if (level <= 4) err = dm_errno_or_class == -1 ? saved_errno : dm_errno_or_class;
  current_sink->push_back(
      LogLine{level, file ? file : "", line, err > 0 ? err : 0, std::string(buf)});
}

}  // namespace

LibdmCall::LibdmCall(std::vector<LogLine>* sink, int level) : lock_(libdm_mutex) {
  current_sink = sink;
  call_level = level;
}

LibdmCall::LibdmCall(std::vector<LogLine>* sink, std::try_to_lock_t, int level)
    : lock_(libdm_mutex, std::try_to_lock) {
  if (lock_.owns_lock()) {
    current_sink = sink;
    call_level = level;
  }
}

LibdmCall::~LibdmCall() {
  if (lock_.owns_lock()) {
    current_sink = nullptr;
    call_level = -1;
  }
}

void InitLibdmLogging() {
  std::call_once(logging_once, [] {
    std::lock_guard<std::mutex> guard(libdm_mutex);
    dm_log_with_errno_init(CaptureLog);
  });
}

void SetLibdmLogLevel(int level) {
  capture_level.store(level, std::memory_order_relaxed);
}

int GetLibdmLogLevel() {
  return capture_level.load(std::memory_order_relaxed);
}

}  // namespace devmapper
