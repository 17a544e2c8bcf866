// The few kernel calls Node cannot make itself: loop devices, block device size and
// discard, mount(2) and umount2(2). Each returns a Promise and runs off the JS thread.
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

// Constants for the flags above (MS_*, MNT_*), exported as an object.
Napi::Object MountConstants(Napi::Env env);

}  // namespace devmapper
