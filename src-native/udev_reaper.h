// The udev reaper: waits for udev cookies off the caller's path.
//
// A task run with udev_reap hands its cookie here instead of waiting for it: one thread per
// process polls every pending cookie (dm_udev_wait_immediate, the libdm lock taken per
// round, never held across a sleep), destroys each semaphore once udev is done with it, and
// completes and destroys by force one whose deadline passed, so that no semaphore outlives
// its bound. Per device name, order is kept: a task that makes a node (create, rename) first
// waits for the name's pending cookies, so a name is not reused while udev still works on
// its previous device. At the addon's unload every pending cookie is completed and
// destroyed, so a process that exits without settling leaves none behind.
#pragma once

#include <cstdint>
#include <string>

namespace devmapper {

struct ReaperStats {
  uint64_t pending = 0;    // cookies udev has not finished yet
  uint64_t reaped = 0;     // completed by udev and destroyed, since the process started
  uint64_t timed_out = 0;  // completed by force at their deadline
};

// Takes over the wait for `cookie` (set by a task on device `name`; `removal`: a remove task's),
// bounded by timeout_ms. The task must have left its node to udev (DISABLE_LIBRARY_FALLBACK):
// the reaper makes or removes /dev/mapper/NAME by hand only where udev did not (a cookie
// completed by force, or a node udev would not remove).
void ReapCookie(uint32_t cookie, const std::string& name, bool removal, uint32_t timeout_ms);

// Blocks until no cookie of `name` is pending (each is bounded by its own deadline).
void WaitForName(const std::string& name);

// Whether a cookie of `name` is pending.
bool NamePending(const std::string& name);

// Blocks until no cookie is pending or timeout_ms passed; returns the stats after.
ReaperStats SettleCookies(uint32_t timeout_ms);

ReaperStats GetReaperStats();

// Destroys udev cookie semaphores nobody will collect: udev completed them (value 1: only the
// waiter's own count is left) at least min_age_s ago, so their waiter is gone (a process
// killed before its wait or its reaper's poll; a live waiter collects within milliseconds).
// Returns how many went. Cookies udev has not completed are left alone.
int SweepAbandonedCookies(uint32_t min_age_s);

// Completes and destroys every pending cookie and stops the thread (the addon's unload).
void ShutdownReaper();

}  // namespace devmapper
