#include "simulator/notifier.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

namespace simulator {

tracefmt::Result<EventFdNotifier> EventFdNotifier::Create() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return tracefmt::MakeSystemError("eventfd");
  return EventFdNotifier(fd);
}

EventFdNotifier::EventFdNotifier(EventFdNotifier&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), raised_(other.raised_.load()) {}

EventFdNotifier::~EventFdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFdNotifier::OnHighWater(uint32_t /*cpu*/) {
  raised_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow (2^64 - 1 pending): nothing to do then.
  [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
}

uint64_t EventFdNotifier::Ack() {
  uint64_t count = 0;
  if (::read(fd_, &count, sizeof count) != static_cast<ssize_t>(sizeof count)) return 0;
  return count;
}

}  // namespace simulator
