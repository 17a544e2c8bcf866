// Serialisation of every libdevmapper call in the process, and capture of the log lines
// libdevmapper emits while a call runs.
//
// libdevmapper keeps process-wide state (the control fd, the stacked /dev/mapper node
// operations, the log function) and is not thread-safe, so this one mutex is process-wide
// on purpose, shared by every Node environment (main thread and workers) that loads us.
#pragma once

#include <mutex>
#include <string>
#include <vector>

namespace devmapper {

struct LogLine {
  int level;  // syslog-style: 2 fatal, 3 error, 4 warning, 5 notice, 6 info, 7 debug
  std::string file;
  int line;
  int err;  // errno libdevmapper attached (0 for none; a message class on debug lines)
  std::string message;
};

// Holds the libdm mutex for its lifetime and collects the log lines of that span, beyond
// errors up to `level` (-1: the process's level, SetLibdmLogLevel), so that a caller with its
// own level (a DeviceSet's dm.libdm_log_level) does not change anyone else's.
class LibdmCall {
 public:
  explicit LibdmCall(std::vector<LogLine>* sink, int level = -1);
  // Takes the mutex only if it is free: owns() says whether it did (and then only is the sink
  // installed). For the JS thread, which must not wait behind another thread's ioctl.
  LibdmCall(std::vector<LogLine>* sink, std::try_to_lock_t, int level = -1);
  ~LibdmCall();
  bool owns() const { return lock_.owns_lock(); }
  LibdmCall(const LibdmCall&) = delete;
  LibdmCall& operator=(const LibdmCall&) = delete;

 private:
  std::unique_lock<std::mutex> lock_;
};

// Installs our log function (once per process). Lines logged outside a LibdmCall are dropped:
// libdevmapper must never print on the user's stderr.
void InitLibdmLogging();

// The process's highest level captured beyond errors (default 5, notice; error lines are
// always kept), for calls that bring no level of their own. Debug lines cost formatting on
// every call.
void SetLibdmLogLevel(int level);
int GetLibdmLogLevel();

}  // namespace devmapper
