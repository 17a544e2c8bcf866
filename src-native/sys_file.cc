// File calls Node has no API for, needed to unpack and pack image layers: extended attributes
// of a path itself (never of a symlink's target), mknod(2) for devices and fifos, and
// utimensat(2) with nanoseconds and AT_SYMLINK_NOFOLLOW.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "js_args.h"
#include "promise_worker.h"
#include "sys_ops.h"

namespace devmapper {

namespace {

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer");
  return static_cast<int64_t>(d);
}

struct XattrValue {
  bool found = false;
  std::vector<char> bytes;
};

}  // namespace

Napi::Value LgetxattrJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  std::string name = ArgString(info, 1, "name");
  return FnWorker<XattrValue>::Start(
      info.Env(), "devmapper:lgetxattr",
      [=](XattrValue* v, NativeError* e) {
        // The size can change between the two calls: retry on ERANGE.
        for (int attempt = 0; attempt < 5; attempt++) {
          ssize_t n = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
          if (n < 0) break;
          v->bytes.resize(static_cast<size_t>(n));
          n = lgetxattr(path.c_str(), name.c_str(), v->bytes.data(), v->bytes.size());
          if (n >= 0) {
            v->bytes.resize(static_cast<size_t>(n));
            v->found = true;
            return;
          }
          if (errno != ERANGE) break;
        }
        if (errno == ENODATA) return;
        e->Set("lgetxattr", path, errno,
               "lgetxattr " + name + " of " + path + ": " + strerror(errno));
      },
      [](Napi::Env env, const XattrValue& v) -> Napi::Value {
        if (!v.found) return env.Null();
        return Napi::Buffer<char>::Copy(env, v.bytes.data(), v.bytes.size());
      });
}

Napi::Value LsetxattrJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  std::string name = ArgString(info, 1, "name");
  if (info.Length() < 3 || !info[2].IsBuffer())
    throw Napi::TypeError::New(info.Env(), "value must be a Buffer");
  Napi::Buffer<char> buf = info[2].As<Napi::Buffer<char>>();
  std::vector<char> value(buf.Data(), buf.Data() + buf.Length());
  return FnWorker<int>::Start(
      info.Env(), "devmapper:lsetxattr",
      [=](int*, NativeError* e) {
        if (lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) < 0)
          e->Set("lsetxattr", path, errno,
                 "lsetxattr " + name + " on " + path + ": " + strerror(errno));
      },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value LremovexattrJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  std::string name = ArgString(info, 1, "name");
  return FnWorker<int>::Start(
      info.Env(), "devmapper:lremovexattr",
      [=](int*, NativeError* e) {
        if (lremovexattr(path.c_str(), name.c_str()) < 0 && errno != ENODATA)
          e->Set("lremovexattr", path, errno,
                 "lremovexattr " + name + " of " + path + ": " + strerror(errno));
      },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value LlistxattrJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  return FnWorker<std::vector<std::string>>::Start(
      info.Env(), "devmapper:llistxattr",
      [=](std::vector<std::string>* names, NativeError* e) {
        std::vector<char> list;
        for (int attempt = 0; attempt < 5; attempt++) {
          ssize_t n = llistxattr(path.c_str(), nullptr, 0);
          if (n < 0) break;
          list.resize(static_cast<size_t>(n));
          n = llistxattr(path.c_str(), list.data(), list.size());
          if (n >= 0) {
            // The list is NUL-terminated names one after the other.
            for (size_t start = 0; start < static_cast<size_t>(n);) {
              size_t len = strnlen(list.data() + start, static_cast<size_t>(n) - start);
              if (len > 0) names->emplace_back(list.data() + start, len);
              start += len + 1;
            }
            return;
          }
          if (errno != ERANGE) break;
        }
        // File systems without xattr support have no names to list.
        if (errno == ENOTSUP) return;
        e->Set("llistxattr", path, errno, "llistxattr of " + path + ": " + strerror(errno));
      },
      [](Napi::Env env, const std::vector<std::string>& names) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, names.size());
        for (size_t i = 0; i < names.size(); i++) arr.Set(i, Napi::String::New(env, names[i]));
        return arr;
      });
}

Napi::Value MknodJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int64_t mode = ArgInt(info, 1, "mode");
  int64_t major_num = ArgInt(info, 2, "major");
  int64_t minor_num = ArgInt(info, 3, "minor");
  return FnWorker<int>::Start(
      info.Env(), "devmapper:mknod",
      [=](int*, NativeError* e) {
        dev_t dev = makedev(static_cast<unsigned>(major_num), static_cast<unsigned>(minor_num));
        if (mknod(path.c_str(), static_cast<mode_t>(mode), dev) < 0)
          e->Set("mknod", path, errno, "mknod " + path + ": " + strerror(errno));
      },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value LutimesNsJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  struct timespec times[2];
  times[0].tv_sec = static_cast<time_t>(ArgInt(info, 1, "atimeSec"));
  times[0].tv_nsec = static_cast<long>(ArgInt(info, 2, "atimeNsec"));
  times[1].tv_sec = static_cast<time_t>(ArgInt(info, 3, "mtimeSec"));
  times[1].tv_nsec = static_cast<long>(ArgInt(info, 4, "mtimeNsec"));
  return FnWorker<int>::Start(
      info.Env(), "devmapper:lutimesNs",
      [=](int*, NativeError* e) {
        if (utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0)
          e->Set("utimensat", path, errno, "utimensat " + path + ": " + strerror(errno));
      },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

namespace {

struct ReadResult {
  bool found = false;
  std::string text;
};

// The whole file, or found=false for ENOENT; other errors set e (naming the file).
void ReadWholeFile(const std::string& path, ReadResult* r, NativeError* e) {
  // Metadata is a regular file the library wrote: a symlink is refused (ELOOP), and nothing
  // else (a FIFO would block the open, a device would read anything) is read.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP)
      e->Set("read metadata", path, ELOOP, "read metadata " + path + ": a symbolic link, refused");
    else if (errno != ENOENT)
      e->Set("read metadata", path, errno, "read metadata " + path + ": " + strerror(errno));
    return;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    e->Set("read metadata", path, errno, "read metadata " + path + ": " + strerror(errno));
    close(fd);
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    int err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    e->Set("read metadata", path, err, "read metadata " + path + ": not a regular file");
    close(fd);
    return;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      e->Set("read metadata", path, errno, "read metadata " + path + ": " + strerror(errno));
      break;
    }
    if (n == 0) {
      r->found = true;
      break;
    }
    r->text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
}

}  // namespace

Napi::Value ReadFilesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(env, "readFiles(paths): paths must be an array");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::string> paths;
  paths.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, "readFiles: each path must be a string");
    paths.push_back(v.As<Napi::String>().Utf8Value());
  }
  return FnWorker<std::vector<ReadResult>>::Start(
      env, "devmapper:readFiles",
      [paths](std::vector<ReadResult>* out, NativeError* e) {
        out->resize(paths.size());
        for (size_t i = 0; i < paths.size() && !e->set; i++) ReadWholeFile(paths[i], &(*out)[i], e);
      },
      [](Napi::Env env, const std::vector<ReadResult>& out) -> Napi::Value {
        Napi::Array r = Napi::Array::New(env, out.size());
        for (size_t i = 0; i < out.size(); i++)
          r.Set(i, out[i].found ? Napi::String::New(env, out[i].text) : env.Null());
        return r;
      });
}

Napi::Value LockFileJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  NativeError e;
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    e.Set("lock", path, errno, "open " + path + ": " + strerror(errno));
    throw Napi::Error(env, MakeJsError(env, e));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    // The holder wrote its pid: name it.
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    e.Set("lock", path, err,
          path + " is locked" + (holder.empty() ? "" : " by pid " + holder) + ": " + strerror(err));
    throw Napi::Error(env, MakeJsError(env, e));
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) < 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int err = errno;
    close(fd);
    e.Set("lock", path, err, "write " + path + ": " + strerror(err));
    throw Napi::Error(env, MakeJsError(env, e));
  }
  return Napi::Number::New(env, fd);
}

Napi::Value UnlockFileJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "fd must be a number");
  // Closing the descriptor drops the flock; a process that dies drops it the same way.
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

}  // namespace devmapper
