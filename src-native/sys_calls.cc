#include "sys_calls.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace devmapper {
namespace sys {

namespace {

// The one error text of every call here.
void Fail(NativeError* e, const std::string& op, const std::string& device,
          const std::string& subject, const char* call, int err) {
  e->Set(op, device, err, op + " " + subject + ": " + call + ": " + strerror(err));
}

void Fail(NativeError* e, const std::string& op, const std::string& path, const char* call,
          int err) {
  Fail(e, op, path, path, call, err);
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

// Closes fd; the first failure of the sequence (`failed`, `err`) wins over close's.
void CloseKeepingFirstError(int fd, const char** failed, int* err) {
  if (close(fd) < 0 && *failed == nullptr) {
    *failed = "close";
    *err = errno;
  }
}

}  // namespace

void Mount(const std::string& op, const std::string& source, const std::string& target,
           const std::string& fstype, unsigned long flags, const std::string& data,
           NativeError* e) {
  if (mount(source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(), flags,
            data.empty() ? nullptr : data.c_str()) < 0)
    Fail(e, op, source, source + " on " + target + " (" + fstype + ")", "mount", errno);
}

void Umount(const std::string& op, const std::string& target, int flags, NativeError* e) {
  if (umount2(target.c_str(), flags) < 0) Fail(e, op, target, "umount2", errno);
}

void Mkdir(const std::string& op, const std::string& path, uint32_t mode, NativeError* e) {
  if (mkdir(path.c_str(), mode) < 0) return Fail(e, op, path, "mkdir", errno);
  if (chmod(path.c_str(), mode) < 0) Fail(e, op, path, "chmod", errno);
}

void Rmdir(const std::string& op, const std::string& path, NativeError* e) {
  if (rmdir(path.c_str()) < 0) Fail(e, op, path, "rmdir", errno);
}

void Unlink(const std::string& op, const std::string& path, NativeError* e) {
  if (unlink(path.c_str()) < 0) Fail(e, op, path, "unlink", errno);
}

void WriteFileAtomic(const std::string& op, const std::string& path, const std::string& data,
                     uint32_t mode, NativeError* e) {
  thread_local std::mt19937 rng{std::random_device{}()};
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    temp = dir + "/.tmp" + std::to_string(rng());
    fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return Fail(e, op, path, "create temporary file", errno);
  const char* failed = nullptr;
  if (!WriteAll(fd, data)) {
    failed = "write";
  } else if (fsync(fd) < 0) {
    failed = "fsync";
  }
  int err = errno;
  CloseKeepingFirstError(fd, &failed, &err);
  if (failed == nullptr && rename(temp.c_str(), path.c_str()) < 0) {
    failed = "rename";
    err = errno;
  }
  if (failed != nullptr) {
    unlink(temp.c_str());
    Fail(e, op, path, failed, err);
  }
}

void CreateFile(const std::string& op, const std::string& path, const std::string& data,
                uint32_t mode, NativeError* e) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Fail(e, op, path, "create", errno);
  const char* failed = nullptr;
  if (fchmod(fd, mode) < 0) {
    failed = "fchmod";
  } else if (!WriteAll(fd, data)) {
    failed = "write";
  }
  int err = errno;
  CloseKeepingFirstError(fd, &failed, &err);
  if (failed != nullptr) {
    unlink(path.c_str());
    Fail(e, op, path, failed, err);
  }
}

void SyncDir(const std::string& op, const std::string& path, NativeError* e) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail(e, op, path, "open directory", errno);
  if (fsync(fd) < 0) Fail(e, op, path, "fsync directory", errno);
  close(fd);
}

void Discard(const std::string& op, const std::string& path, uint64_t offset, uint64_t length,
             NativeError* e) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Fail(e, op, path, "open", errno);
  uint64_t range[2] = {offset, length};
  if (ioctl(fd, BLKDISCARD, range) < 0) Fail(e, op, path, "BLKDISCARD", errno);
  close(fd);
}

}  // namespace sys
}  // namespace devmapper
