// xenbaked/scheduler.h — time and deferred work for the daemon's one event-loop thread.
//
// The drain loop never reads a clock or arms a timer by itself: it asks the Scheduler it was
// given. In the daemon that is AsioScheduler (steady_clock + asio::steady_timer on the loop's
// io_context); in tests and benchmarks it is ManualScheduler, whose time moves only when the test
// says so, so a test steps the simulator and the clock together and runs the io_context with
// poll() — it never sleeps.
//
//   boost::asio::io_context io;
//   ManualScheduler sched;
//   DrainLoop loop(io, sched, hv, sink, options);
//   sched.Advance(100'000'000);   // 100 ms: due timers run
//   io.poll();
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace xenbaked {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Monotonic time in ns (an arbitrary epoch). Callable from any thread.
  virtual uint64_t NowNs() const = 0;
  // Wall-clock time in ns since the Unix epoch, for reports only.
  virtual uint64_t UnixNowNs() const = 0;
  // Runs `task` on the loop thread once `delay_ns` has passed. Returns an id for Cancel.
  virtual uint64_t RunAfter(uint64_t delay_ns, std::function<void()> task) = 0;
  // Drops a task that has not run yet; no-op otherwise.
  virtual void Cancel(uint64_t id) = 0;
};

// steady_clock and asio::steady_timer on `io`.
class AsioScheduler final : public Scheduler {
 public:
  explicit AsioScheduler(boost::asio::io_context& io);
  ~AsioScheduler() override;
  uint64_t NowNs() const override;
  uint64_t UnixNowNs() const override;
  uint64_t RunAfter(uint64_t delay_ns, std::function<void()> task) override;
  void Cancel(uint64_t id) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Time stands still until Advance, which runs the tasks that fall due, each with the clock set to
// its deadline, in deadline order (ties in the order they were scheduled) — so a periodic task
// that re-arms itself runs once per period of the span. Work the tasks post to the io_context
// runs when the test polls it.
class ManualScheduler final : public Scheduler {
 public:
  explicit ManualScheduler(uint64_t start_ns = 1'000'000'000,
                           uint64_t unix_start_ns = 1'700'000'000'000'000'000);
  uint64_t NowNs() const override { return now_ns_.load(std::memory_order_relaxed); }
  uint64_t UnixNowNs() const override { return unix_start_ns_ + (now_ns_ - start_ns_); }
  uint64_t RunAfter(uint64_t delay_ns, std::function<void()> task) override;
  void Cancel(uint64_t id) override;
  void Advance(uint64_t ns);
  size_t pending() const { return tasks_.size(); }

 private:
  struct Key {
    uint64_t deadline;
    uint64_t id;
    bool operator<(const Key& o) const {
      return deadline != o.deadline ? deadline < o.deadline : id < o.id;
    }
  };
  uint64_t start_ns_;
  uint64_t unix_start_ns_;
  std::atomic<uint64_t> now_ns_;  // read from other threads too (WakeWatch)
  uint64_t next_id_ = 1;
  std::map<Key, std::function<void()>> tasks_;
  std::map<uint64_t, uint64_t> deadline_of_;
};

}  // namespace xenbaked
