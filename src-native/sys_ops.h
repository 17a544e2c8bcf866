// The few kernel calls Node cannot make itself: loop devices, block device size and
// discard, mount(2) and umount2(2), xattrs, mknod(2) and utimensat(2). Each returns a
// Promise and runs off the JS thread.
#pragma once

#include <napi.h>

namespace devmapper {

// loopAttach(file, { readOnly, autoclear, directIo }) -> { path, number, major, minor, fd }
// The returned fd holds the loop device: with autoclear, the device detaches when the last
// holder (this fd, or a device-mapper table using it) closes.
Napi::Value LoopAttachJs(const Napi::CallbackInfo& info);
// loopDetach(loopPath) -> undefined
Napi::Value LoopDetachJs(const Napi::CallbackInfo& info);
// loopSetCapacity(loopPath) -> undefined: re-reads the backing file's size after it grew.
Napi::Value LoopSetCapacityJs(const Napi::CallbackInfo& info);
// loopFind(file) -> [{ path, number, major, minor, autoclear, readOnly, backingFile }]
Napi::Value LoopFindJs(const Napi::CallbackInfo& info);
// loopStatus(loopPath) -> { ... } or null when the loop device is not bound
Napi::Value LoopStatusJs(const Napi::CallbackInfo& info);

// blockDeviceSize(path) -> bytes (number)
Napi::Value BlockDeviceSizeJs(const Napi::CallbackInfo& info);
// blockDiscard(path, offsetBytes, lengthBytes) -> undefined
Napi::Value BlockDiscardJs(const Napi::CallbackInfo& info);

// mount(source, target, fstype, flags, data) -> undefined
Napi::Value MountJs(const Napi::CallbackInfo& info);
// umount(target, flags) -> undefined
Napi::Value UmountJs(const Napi::CallbackInfo& info);
// isMountPoint(path) -> boolean, synchronously (one statx): whether path is the root of a
// mount; false when it does not exist.
Napi::Value IsMountPointJs(const Napi::CallbackInfo& info);

// lgetxattr(path, name) -> Buffer, or null when the path has no such attribute
Napi::Value LgetxattrJs(const Napi::CallbackInfo& info);
// lsetxattr(path, name, Buffer) -> undefined
Napi::Value LsetxattrJs(const Napi::CallbackInfo& info);
// lremovexattr(path, name) -> undefined (also when the path had no such attribute)
Napi::Value LremovexattrJs(const Napi::CallbackInfo& info);
// llistxattr(path) -> string[] (empty where the file system has no xattrs)
Napi::Value LlistxattrJs(const Napi::CallbackInfo& info);
// mknod(path, mode with S_IF* type bits, major, minor) -> undefined
Napi::Value MknodJs(const Napi::CallbackInfo& info);
// lutimesNs(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec) -> undefined; never follows a symlink
Napi::Value LutimesNsJs(const Napi::CallbackInfo& info);

// readFiles(paths) -> (string | null)[]: each whole file as UTF-8, null when it does not
// exist; one job for all (a DeviceSet root's metadata files at open: thousands).
Napi::Value ReadFilesJs(const Napi::CallbackInfo& info);
// lockFile(path) -> fd, synchronously: the file (made 0600 if missing) locked with
// flock(LOCK_EX | LOCK_NB) and our pid written into it. EWOULDBLOCK (the message names the
// holder's pid) when another open file description holds it.
Napi::Value LockFileJs(const Napi::CallbackInfo& info);
// unlockFile(fd): closes the descriptor, which drops the lock.
Napi::Value UnlockFileJs(const Napi::CallbackInfo& info);

// Constants for the flags above (MS_*, MNT_*), exported as an object.
Napi::Object MountConstants(Napi::Env env);

}  // namespace devmapper
