// The file, mount and block system calls the addon makes, each written once. The standalone
// exports (sys_mount.cc, sys_block.cc) and the step runner (step_plan.cc) both call these, so
// a failure reads the same whichever path made the call:
//   "<operation> <subject>: <call>: <strerror>"
// with the errno kept, `operation` the caller's name for what it was doing and `device` the
// path the call acted on (for a mount, its source).
#pragma once

#include <cstdint>
#include <string>

#include "native_error.h"

namespace devmapper {
namespace sys {

// mount(2); an empty fstype or data is passed as NULL.
void Mount(const std::string& op, const std::string& source, const std::string& target,
           const std::string& fstype, unsigned long flags, const std::string& data, NativeError* e);
// umount2(2).
void Umount(const std::string& op, const std::string& target, int flags, NativeError* e);
// mkdir(2) with exactly `mode`, whatever the umask (mkdir + chmod).
void Mkdir(const std::string& op, const std::string& path, uint32_t mode, NativeError* e);
void Rmdir(const std::string& op, const std::string& path, NativeError* e);
void Unlink(const std::string& op, const std::string& path, NativeError* e);
// Replaces the file atomically: a ".tmp<random>" file beside it (the shape of Docker's
// temporary names), written, fsynced and renamed over the target. On failure the target is as
// it was and no temporary file is left. The directory is not synced: see SyncDir.
void WriteFileAtomic(const std::string& op, const std::string& path, const std::string& data,
                     uint32_t mode, NativeError* e);
// A new file (EEXIST when it exists) with exactly `mode`; not synced.
void CreateFile(const std::string& op, const std::string& path, const std::string& data,
                uint32_t mode, NativeError* e);
// fsync of a directory, so that renames and unlinks in it survive a crash.
void SyncDir(const std::string& op, const std::string& path, NativeError* e);
// BLKDISCARD of [offset, offset + length) bytes of a block device.
void Discard(const std::string& op, const std::string& path, uint64_t offset, uint64_t length,
             NativeError* e);

}  // namespace sys
}  // namespace devmapper
