#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "js_args.h"
#include "promise_worker.h"
#include "sys_ops.h"

namespace devmapper {

namespace {

constexpr int kLoopMajor = 7;
// LOOP_CTL_GET_FREE hands the same free number to racing processes; the loser gets EBUSY
// from the bind and tries the next one. Bounded, as everything else.
constexpr int kAttachAttempts = 32;

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string SysMessage(const std::string& op, const std::string& dev, int err) {
  return op + " " + dev + " failed: " + strerror(err);
}

// Opens /dev/loopN, creating the node when no devtmpfs/udev made it.
int OpenLoopNode(int number, int flags) {
  std::string path = "/dev/loop" + std::to_string(number);
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (mknod(path.c_str(), S_IFBLK | 0660, makedev(kLoopMajor, number)) < 0 && errno != EEXIST)
      return -1;
    fd = open(path.c_str(), flags | O_CLOEXEC);
  }
  return fd;
}

struct AttachResult {
  std::string path;
  int number = -1;
  unsigned major_num = 0, minor_num = 0;
  int fd = -1;
};

void Attach(const std::string& file, bool read_only, bool autoclear, bool direct_io,
            AttachResult* r, NativeError* e) {
  const char* op = "loop attach";
  Fd backing(open(file.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (backing.fd < 0) return e->Set(op, file, errno, SysMessage(op, file, errno));
  Fd ctl(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (ctl.fd < 0)
    return e->Set(op, "/dev/loop-control", errno,
                  SysMessage(op, "(open /dev/loop-control)", errno));

  struct loop_info64 li;
  memset(&li, 0, sizeof li);
  strncpy(reinterpret_cast<char*>(li.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
  li.lo_flags = (autoclear ? LO_FLAGS_AUTOCLEAR : 0) | (read_only ? LO_FLAGS_READ_ONLY : 0) |
                (direct_io ? LO_FLAGS_DIRECT_IO : 0);

  int last_err = EBUSY;
  for (int attempt = 0; attempt < kAttachAttempts; attempt++) {
    int n = ioctl(ctl.fd, LOOP_CTL_GET_FREE);
    if (n < 0) return e->Set(op, file, errno, SysMessage(op, file + " (LOOP_CTL_GET_FREE)", errno));
    Fd loop(OpenLoopNode(n, read_only ? O_RDONLY : O_RDWR));
    if (loop.fd < 0) {
      last_err = errno;
      continue;
    }
    struct loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = static_cast<uint32_t>(backing.fd);
    cfg.info = li;
    int rc = ioctl(loop.fd, LOOP_CONFIGURE, &cfg);
    if (rc < 0 && (errno == EINVAL || errno == ENOTTY)) {
      // Kernels before 5.8 have no LOOP_CONFIGURE: bind, then set the flags.
      rc = ioctl(loop.fd, LOOP_SET_FD, backing.fd);
      if (rc == 0 && ioctl(loop.fd, LOOP_SET_STATUS64, &li) < 0) {
        int err = errno;
        ioctl(loop.fd, LOOP_CLR_FD, 0);
        return e->Set(op, file, err, SysMessage(op, file + " (LOOP_SET_STATUS64)", err));
      }
    }
    if (rc < 0) {
      last_err = errno;
      if (errno == EBUSY) continue;  // lost the race for this number
      return e->Set(op, file, errno, SysMessage(op, file, errno));
    }
    struct stat st;
    if (fstat(loop.fd, &st) < 0) {
      int err = errno;
      ioctl(loop.fd, LOOP_CLR_FD, 0);
      return e->Set(op, file, err, SysMessage(op, file, err));
    }
    r->number = n;
    r->path = "/dev/loop" + std::to_string(n);
    r->major_num = major(st.st_rdev);
    r->minor_num = minor(st.st_rdev);
    r->fd = loop.release();
    return;
  }
  e->Set(op, file, last_err,
         SysMessage(op, file, last_err) + " (no free loop device after " +
             std::to_string(kAttachAttempts) + " attempts)");
}

struct LoopEntry {
  std::string path;
  int number;
  unsigned major_num, minor_num;
  bool autoclear, read_only;
  std::string backing_file;
  uint64_t backing_dev, backing_inode;
};

// Reads the status of /dev/loopN; false when unbound (ENXIO) or unreadable.
bool ReadLoop(int number, LoopEntry* out) {
  Fd fd(OpenLoopNode(number, O_RDONLY));
  if (fd.fd < 0) return false;
  // Zeroed although the kernel fills it: valgrind has no model of this ioctl's output.
  struct loop_info64 li;
  memset(&li, 0, sizeof li);
  if (ioctl(fd.fd, LOOP_GET_STATUS64, &li) < 0) return false;
  struct stat st;
  if (fstat(fd.fd, &st) < 0) return false;
  out->path = "/dev/loop" + std::to_string(number);
  out->number = number;
  out->major_num = major(st.st_rdev);
  out->minor_num = minor(st.st_rdev);
  out->autoclear = (li.lo_flags & LO_FLAGS_AUTOCLEAR) != 0;
  out->read_only = (li.lo_flags & LO_FLAGS_READ_ONLY) != 0;
  out->backing_dev = li.lo_device;
  out->backing_inode = li.lo_inode;
  // lo_file_name is truncated to 63 bytes; sysfs has the full path when present.
  std::string sys = "/sys/block/loop" + std::to_string(number) + "/loop/backing_file";
  Fd bf(open(sys.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[4097];
  ssize_t len = bf.fd >= 0 ? read(bf.fd, buf, sizeof buf - 1) : -1;
  if (len > 0) {
    buf[len] = 0;
    if (buf[len - 1] == '\n') buf[len - 1] = 0;
    out->backing_file = buf;
  } else {
    out->backing_file = reinterpret_cast<const char*>(li.lo_file_name);
  }
  return true;
}

std::vector<int> LoopNumbers() {
  std::vector<int> nums;
  DIR* d = opendir("/sys/block");
  if (d == nullptr) return nums;
  while (struct dirent* ent = readdir(d)) {
    if (strncmp(ent->d_name, "loop", 4) != 0) continue;
    char* end = nullptr;
    long n = strtol(ent->d_name + 4, &end, 10);
    if (end != ent->d_name + 4 && *end == 0) nums.push_back(static_cast<int>(n));
  }
  closedir(d);
  return nums;
}

Napi::Object LoopEntryToJs(Napi::Env env, const LoopEntry& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", l.path);
  o.Set("number", l.number);
  o.Set("major", l.major_num);
  o.Set("minor", l.minor_num);
  o.Set("autoclear", l.autoclear);
  o.Set("readOnly", l.read_only);
  o.Set("backingFile", l.backing_file);
  return o;
}

int LoopNumberOf(const std::string& path) {
  const std::string prefix = "/dev/loop";
  if (path.compare(0, prefix.size(), prefix) != 0) return -1;
  char* end = nullptr;
  long n = strtol(path.c_str() + prefix.size(), &end, 10);
  if (end == path.c_str() + prefix.size() || *end != 0 || n < 0) return -1;
  return static_cast<int>(n);
}

}  // namespace

Napi::Value LoopAttachJs(const Napi::CallbackInfo& info) {
  std::string file = ArgString(info, 0, "file");
  Napi::Object o = ArgObject(info, 1);
  bool ro = GetBool(o, "readOnly"), ac = GetBool(o, "autoclear", true),
       dio = GetBool(o, "directIo");
  return FnWorker<AttachResult>::Start(
      info.Env(), "devmapper:loopAttach",
      [=](AttachResult* r, NativeError* e) { Attach(file, ro, ac, dio, r, e); },
      [](Napi::Env env, const AttachResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("path", r.path);
        o.Set("number", r.number);
        o.Set("major", r.major_num);
        o.Set("minor", r.minor_num);
        o.Set("fd", r.fd);
        return o;
      });
}

Napi::Value LoopDetachJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "loopPath");
  return FnWorker<int>::Start(
      info.Env(), "devmapper:loopDetach",
      [=](int*, NativeError* e) {
        Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.fd < 0)
          return e->Set("loop detach", path, errno, SysMessage("loop detach", path, errno));
        if (ioctl(fd.fd, LOOP_CLR_FD, 0) < 0)
          e->Set("loop detach", path, errno, SysMessage("loop detach", path, errno));
      },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value LoopSetCapacityJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "loopPath");
  return FnWorker<int>::Start(
      info.Env(), "devmapper:loopSetCapacity",
      [=](int*, NativeError* e) {
        const char* op = "loop set capacity";
        Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.fd < 0) return e->Set(op, path, errno, SysMessage(op, path, errno));
        if (ioctl(fd.fd, LOOP_SET_CAPACITY, 0) < 0)
          e->Set(op, path, errno, SysMessage(op, path, errno));
      },
      [](Napi::Env env, const int&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value LoopFindJs(const Napi::CallbackInfo& info) {
  std::string file = ArgString(info, 0, "file");
  return FnWorker<std::vector<LoopEntry>>::Start(
      info.Env(), "devmapper:loopFind",
      [=](std::vector<LoopEntry>* r, NativeError* e) {
        struct stat st;
        if (stat(file.c_str(), &st) < 0)
          return e->Set("loop find", file, errno, SysMessage("loop find", file, errno));
        // Match on the backing file's device and inode, not its name: paths can differ
        // (bind mounts, symlinks) and a deleted file keeps its loop device.
        for (int n : LoopNumbers()) {
          LoopEntry l;
          if (ReadLoop(n, &l) && l.backing_inode == st.st_ino &&
              l.backing_dev == static_cast<uint64_t>(st.st_dev))
            r->push_back(l);
        }
      },
      [](Napi::Env env, const std::vector<LoopEntry>& r) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, r.size());
        for (size_t i = 0; i < r.size(); i++) a.Set(i, LoopEntryToJs(env, r[i]));
        return a;
      });
}

Napi::Value LoopStatusJs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "loopPath");
  int number = LoopNumberOf(path);
  if (number < 0) throw Napi::TypeError::New(info.Env(), "not a /dev/loopN path: " + path);
  struct Out {
    bool bound = false;
    LoopEntry l;
  };
  return FnWorker<Out>::Start(
      info.Env(), "devmapper:loopStatus",
      [=](Out* r, NativeError*) { r->bound = ReadLoop(number, &r->l); },
      [](Napi::Env env, const Out& r) -> Napi::Value {
        return r.bound ? Napi::Value(LoopEntryToJs(env, r.l)) : env.Null();
      });
}

}  // namespace devmapper
