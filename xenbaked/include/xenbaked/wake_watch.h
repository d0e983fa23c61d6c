// xenbaked/wake_watch.h — when the trace interrupt arrived, seen from outside the event loop.
//
// The drain runs on the daemon's one event-loop thread, after whatever handler that thread is
// busy with (an API request, a publication). Timed from the moment the drain handler starts, the
// wait behind those handlers would not show. A WakeWatch thread does nothing but wait for the
// interrupt's fd to become readable and note, on the loop's own clock, the first moment it saw it
// so; the drain handler takes that moment as its wake. It never reads or acknowledges the fd: the
// loop does, as before, and re-arms the watch after acknowledging.
//
//   WakeWatch watch(event_fd, scheduler);         // scheduler.NowNs() is called from the thread
//   // in the drain handler, after acknowledging the interrupt:
//   const uint64_t wake_ns = watch.Take().value_or(scheduler.NowNs());
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "xenbaked/scheduler.h"

namespace xenbaked {

class WakeWatch {
 public:
  // Watches `event_fd` (not owned; it must stay open until this is destroyed). `clock.NowNs()`
  // must be callable from another thread (AsioScheduler's and ManualScheduler's are).
  WakeWatch(int event_fd, const Scheduler& clock);
  ~WakeWatch();  // stops the thread and joins it
  WakeWatch(const WakeWatch&) = delete;
  WakeWatch& operator=(const WakeWatch&) = delete;

  // Whether the thread runs (false when its eventfd could not be made: wakes are then timed
  // from the handler, as without a watch).
  bool running() const { return thread_.joinable(); }
  // The time the fd was first seen readable since the previous Take (nullopt: not seen), then
  // re-arms the watch. Call after acknowledging the interrupt, so that a readiness seen from
  // then on is a new one; a stamp of the acknowledged one that comes in late is dropped.
  std::optional<uint64_t> Take();
  // Tests: blocks until a readiness has been stamped and not yet taken.
  void WaitForStamp();

 private:
  void Run();

  int event_fd_;
  const Scheduler& clock_;
  int control_fd_ = -1;  // an eventfd: Take re-arms, the destructor stops, through it
  std::mutex mutex_;
  std::condition_variable stamped_;
  std::optional<uint64_t> stamp_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace xenbaked
