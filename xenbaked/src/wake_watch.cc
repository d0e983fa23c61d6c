#include "xenbaked/wake_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace xenbaked {

WakeWatch::WakeWatch(int event_fd, const Scheduler& clock) : event_fd_(event_fd), clock_(clock) {
  control_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (control_fd_ >= 0) thread_ = std::thread([this] { Run(); });
}

WakeWatch::~WakeWatch() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    const uint64_t one = 1;
    ssize_t n = ::write(control_fd_, &one, sizeof one);
    (void)n;
    thread_.join();
  }
  if (control_fd_ >= 0) ::close(control_fd_);
}

std::optional<uint64_t> WakeWatch::Take() {
  if (!running()) return std::nullopt;
  std::optional<uint64_t> taken;
  {
    std::lock_guard lock(mutex_);
    taken = std::exchange(stamp_, std::nullopt);
  }
  const uint64_t one = 1;
  ssize_t n = ::write(control_fd_, &one, sizeof one);  // re-arm (counts add up: never blocks)
  (void)n;
  return taken;
}

void WakeWatch::WaitForStamp() {
  std::unique_lock lock(mutex_);
  stamped_.wait(lock, [this] { return stamp_.has_value() || stop_ || !running(); });
}

void WakeWatch::Run() {
  // Armed: watching the fd. After a stamp it watches only the control fd until re-armed, so a
  // readiness not yet acknowledged does not make it spin.
  bool armed = true;
  for (;;) {
    pollfd fds[2] = {{control_fd_, POLLIN, 0}, {event_fd_, POLLIN, 0}};
    const int n = ::poll(fds, armed ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // wakes are then timed from the handler, as without a watch
    }
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      ssize_t r = ::read(control_fd_, &count, sizeof count);
      (void)r;
      std::lock_guard lock(mutex_);
      if (stop_) return;
      // Re-armed after an acknowledgement: a stamp taken since belongs to the readiness that
      // was acknowledged, not to a new one.
      stamp_.reset();
      armed = true;
      continue;  // look at the fd afresh
    }
    if (armed && (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
      const uint64_t now = clock_.NowNs();
      {
        std::lock_guard lock(mutex_);
        stamp_ = now;
      }
      stamped_.notify_all();
      armed = false;
    }
  }
}

}  // namespace xenbaked
