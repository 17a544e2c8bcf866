// One native job for a whole sequence of steps whose order is known in advance: device-mapper
// tasks, durable metadata file writes and removals, mount and umount, mkdir and rmdir. A
// DeviceSet operation pays one thread hop for its sequence instead of one per call.
#pragma once

#include <napi.h>

#include <string>

#include "native_error.h"

namespace devmapper {

// The block device to open for device-mapper device `name` now: /dev/mapper/NAME, or while
// the udev reaper still holds one of its cookies, the kernel's /dev/dm-MINOR (waiting for udev
// where there is no devtmpfs). On the calling (worker) thread: it may run an info task.
std::string UsableDevicePath(const std::string& name, NativeError* e);

// runSteps(steps) -> Promise<{ results, failedStep, error }>
//
// Steps run in order on one libuv worker. A step fails when its call fails with an errno not
// in its `okErrnos`; then the remaining steps are skipped, except those marked `always` (a
// resume after a suspend). The promise resolves either way: `failedStep` is the index of the
// first failure (-1: none) and `error` its DevmapperError, so the caller can undo exactly
// what ran. results[i] = { ran, errno, ns, task? } (task: the dm task's result).
Napi::Value RunStepsJs(const Napi::CallbackInfo& info);

}  // namespace devmapper
