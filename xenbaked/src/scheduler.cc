#include "xenbaked/scheduler.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <unordered_map>

namespace xenbaked {

struct AsioScheduler::Impl {
  explicit Impl(boost::asio::io_context& io_context) : io(io_context) {}
  boost::asio::io_context& io;
  uint64_t next_id = 1;
  // Timers alive until they fire or are cancelled; a cancelled timer's handler sees
  // operation_aborted and does nothing.
  std::unordered_map<uint64_t, std::unique_ptr<boost::asio::steady_timer>> timers;
};

AsioScheduler::AsioScheduler(boost::asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
AsioScheduler::~AsioScheduler() = default;

uint64_t AsioScheduler::NowNs() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t AsioScheduler::UnixNowNs() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

uint64_t AsioScheduler::RunAfter(uint64_t delay_ns, std::function<void()> task) {
  const uint64_t id = impl_->next_id++;
  auto timer = std::make_unique<boost::asio::steady_timer>(impl_->io);
  timer->expires_after(std::chrono::nanoseconds(delay_ns));
  timer->async_wait([this, id, task = std::move(task)](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: `this` may be going away, touch nothing
    impl_->timers.erase(id);
    task();
  });
  impl_->timers.emplace(id, std::move(timer));
  return id;
}

void AsioScheduler::Cancel(uint64_t id) {
  auto it = impl_->timers.find(id);
  if (it == impl_->timers.end()) return;
  it->second->cancel();
  impl_->timers.erase(it);
}

ManualScheduler::ManualScheduler(uint64_t start_ns, uint64_t unix_start_ns)
    : start_ns_(start_ns), unix_start_ns_(unix_start_ns), now_ns_(start_ns) {}

uint64_t ManualScheduler::RunAfter(uint64_t delay_ns, std::function<void()> task) {
  const uint64_t id = next_id_++;
  tasks_.emplace(Key{now_ns_ + delay_ns, id}, std::move(task));
  deadline_of_.emplace(id, now_ns_ + delay_ns);
  return id;
}

void ManualScheduler::Cancel(uint64_t id) {
  auto it = deadline_of_.find(id);
  if (it == deadline_of_.end()) return;
  tasks_.erase(Key{it->second, id});
  deadline_of_.erase(it);
}

void ManualScheduler::Advance(uint64_t ns) {
  const uint64_t target = now_ns_ + ns;
  while (!tasks_.empty() && tasks_.begin()->first.deadline <= target) {
    auto node = tasks_.extract(tasks_.begin());
    deadline_of_.erase(node.key().id);
    now_ns_ = node.key().deadline;
    node.mapped()();
  }
  now_ns_ = target;
}

}  // namespace xenbaked
