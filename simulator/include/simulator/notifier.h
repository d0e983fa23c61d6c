// simulator/notifier.h — VIRQ_TBUF stand-in: an eventfd that becomes readable on a 50% crossing.
//
// Xen raises VIRQ_TBUF once per crossing of the high-water mark; event channels coalesce while
// one is pending, and so does an eventfd (its counter only grows until it is read).
//
//   EventFdNotifier notifier;                     // give &notifier to TraceProducer
//   poll({notifier.fd(), POLLIN}) ...;
//   notifier.Ack();                               // read the counter: unmask
#pragma once

#include <atomic>
#include <cstdint>

#include "simulator/producer.h"
#include "tracefmt/result.h"

namespace simulator {

class EventFdNotifier final : public HighWaterListener {
 public:
  static tracefmt::Result<EventFdNotifier> Create();
  EventFdNotifier(EventFdNotifier&& other) noexcept;
  EventFdNotifier& operator=(EventFdNotifier&&) = delete;
  ~EventFdNotifier() override;

  void OnHighWater(uint32_t cpu) override;
  int fd() const { return fd_; }
  // Clears the readable state. Returns how many notifications were pending (0 if none).
  uint64_t Ack();
  uint64_t raised() const { return raised_.load(std::memory_order_relaxed); }

 private:
  explicit EventFdNotifier(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::atomic<uint64_t> raised_{0};
};

}  // namespace simulator
