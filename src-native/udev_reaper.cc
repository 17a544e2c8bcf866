#include "udev_reaper.h"

#include <libdevmapper.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "libdm_lock.h"

namespace devmapper {

namespace {

using Clock = std::chrono::steady_clock;

struct Pending {
  uint32_t cookie;
  std::string name;
  bool removal;
  Clock::time_point deadline;
};

// Lock order: mu, then the libdm lock (the thread polls with both held; nobody takes mu while
// holding the libdm lock). Allocated once and never freed, and the thread is detached: at
// process exit nothing of it is destroyed under a thread still using it (a joinable
// std::thread destroyed at exit would abort the process).
struct State {
  std::mutex mu;
  std::condition_variable work;  // a cookie was added, or stop asked
  std::condition_variable done;  // a cookie left the pending list, or the thread ended
  std::vector<Pending> pending;
  bool running = false;  // the thread is looping
  bool stopping = false;
  uint64_t reaped_total = 0;
  uint64_t timed_out_total = 0;
};
State& st = *new State();
std::mutex& mu = st.mu;
std::vector<Pending>& pending = st.pending;

// /dev/mapper/NAME made to match the kernel by libdevmapper's own hand (dm_mknodes), with
// the libdm lock held: a node where the device exists, none where it does not.
void MatchNode(const std::string& name) {
  if (dm_mknodes(name.c_str())) dm_task_update_nodes();
}

// Finishes one cookie with mu held (the libdm lock taken here): true when it is gone. udev
// completed it (or libdm gave up on it, destroying it itself): its semaphore is destroyed;
// past its deadline, or when forced, it is completed and destroyed by us, and the node made to
// match the kernel as libdevmapper's fallback would have. After a removal udev leaves a node
// it did not make (one libdevmapper made by hand for an earlier activation): that goes too.
// Nobody in this process makes the name again before this returns (WaitForName).
bool Finish(const Pending& p, Clock::time_point now, bool force) {
  std::vector<LogLine> logs;  // the reaper's own lines: nobody to report them to
  LibdmCall call(&logs);
  if (!force) {
    int ready = 0;
    if (!dm_udev_wait_immediate(p.cookie, &ready) || ready) {
      st.reaped_total++;
      struct stat node;
      if (p.removal && lstat(("/dev/mapper/" + p.name).c_str(), &node) == 0) MatchNode(p.name);
      return true;
    }
    if (now < p.deadline) return false;
  }
  dm_udev_complete(p.cookie);
  dm_udev_wait(p.cookie);
  st.timed_out_total++;
  MatchNode(p.name);
  return true;
}

void Loop() {
  auto delay = std::chrono::microseconds(100);
  std::unique_lock<std::mutex> lk(mu);
  while (!st.stopping) {
    if (pending.empty()) {
      st.work.wait(lk, [] { return st.stopping || !pending.empty(); });
      delay = std::chrono::microseconds(100);
      continue;
    }
    const auto now = Clock::now();
    size_t before = pending.size();
    for (size_t i = 0; i < pending.size();) {
      if (Finish(pending[i], now, false)) {
        pending.erase(pending.begin() + static_cast<long>(i));
      } else {
        i++;
      }
    }
    if (pending.size() != before) {
      st.done.notify_all();
      delay = std::chrono::microseconds(100);
    } else if (delay < std::chrono::milliseconds(5)) {
      delay *= 2;
    }
    // Sleeps without mu: callers add cookies and wait meanwhile.
    st.work.wait_for(lk, delay, [] { return st.stopping; });
  }
  st.running = false;
  st.done.notify_all();
}

// At exit() (process.exit runs no environment cleanup hooks) the pending cookies' semaphores
// are destroyed directly, without libdevmapper, whose lock another thread may hold: udev's
// late udevcomplete then finds none, which it tolerates, and nothing is left behind.
void DestroyPendingAtExit() {
  std::unique_lock<std::mutex> lk(mu, std::try_to_lock);
  for (int i = 0; i < 100 && !lk.owns_lock(); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    lk.try_lock();
  }
  if (!lk.owns_lock()) return;
  for (const Pending& p : pending) {
    int semid = semget(static_cast<key_t>(p.cookie), 1, 0);
    if (semid >= 0) semctl(semid, 0, IPC_RMID);
  }
  pending.clear();
}

}  // namespace

void ReapCookie(uint32_t cookie, const std::string& name, bool removal, uint32_t timeout_ms) {
  std::lock_guard<std::mutex> lk(mu);
  pending.push_back(
      Pending{cookie, name, removal, Clock::now() + std::chrono::milliseconds(timeout_ms)});
  if (!st.running) {
    static bool at_exit_registered = false;
    if (!at_exit_registered) at_exit_registered = std::atexit(DestroyPendingAtExit) == 0;
    st.stopping = false;
    st.running = true;
    std::thread(Loop).detach();
  }
  st.work.notify_one();
}

bool NamePending(const std::string& name) {
  std::lock_guard<std::mutex> lk(mu);
  for (const Pending& p : pending)
    if (p.name == name) return true;
  return false;
}

void WaitForName(const std::string& name) {
  std::unique_lock<std::mutex> lk(mu);
  // Each pending cookie has a deadline the thread enforces, so this wait is bounded too.
  st.done.wait(lk, [&] {
    if (st.stopping) return true;
    for (const Pending& p : pending)
      if (p.name == name) return false;
    return true;
  });
}

ReaperStats GetReaperStats() {
  std::lock_guard<std::mutex> lk(mu);
  return ReaperStats{pending.size(), st.reaped_total, st.timed_out_total};
}

ReaperStats SettleCookies(uint32_t timeout_ms) {
  std::unique_lock<std::mutex> lk(mu);
  st.done.wait_for(lk, std::chrono::milliseconds(timeout_ms),
                   [] { return st.stopping || pending.empty(); });
  return ReaperStats{pending.size(), st.reaped_total, st.timed_out_total};
}

int SweepAbandonedCookies(uint32_t min_age_s) {
  // libdevmapper's cookie semaphores have keys (DM_COOKIE_MAGIC << 16) | base: the cookie.
  constexpr long kCookieMagic = 0x0D4D;
  // Our own pending cookies are not abandoned: the thread collects them (mu held throughout,
  // so none is added or collected meanwhile).
  std::lock_guard<std::mutex> lk(mu);
  std::ifstream in("/proc/sysvipc/sem");
  std::string line;
  std::getline(in, line);  // the header
  const time_t now = time(nullptr);
  int swept = 0;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    long key = 0;
    int semid = -1;
    std::string perms, nsems, uid, gid, cuid, cgid;
    long long otime = 0;
    if (!(f >> key >> semid >> perms >> nsems >> uid >> gid >> cuid >> cgid >> otime)) continue;
    if (((key >> 16) & 0xffff) != kCookieMagic || otime <= 0) continue;
    bool ours = false;
    for (const Pending& p : pending) ours = ours || static_cast<long>(p.cookie) == key;
    if (ours) continue;
    if (now - otime < static_cast<long long>(min_age_s)) continue;
    if (semctl(semid, 0, GETVAL) != 1) continue;
    if (semctl(semid, 0, IPC_RMID) == 0) swept++;
  }
  return swept;
}

void ShutdownReaper() {
  std::unique_lock<std::mutex> lk(mu);
  st.stopping = true;
  st.work.notify_all();
  st.done.notify_all();
  // The thread ends within one poll round (it sleeps at most 5 ms between rounds).
  st.done.wait(lk, [] { return !st.running; });
  // Nobody waits for these any more: free their semaphores now rather than leak them.
  const auto now = Clock::now();
  for (const Pending& p : pending)
    if (!Finish(p, now, false)) Finish(p, now, true);
  pending.clear();
  st.stopping = false;
}

}  // namespace devmapper
