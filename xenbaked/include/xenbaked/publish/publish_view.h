// xenbaked/publish/publish_view.h — what every publisher is handed each interval, and the
// helpers they share: the figures of the newest closed window of each length, looked up by
// domain, and names made safe to show.
//
//   PublishView view{.totals = history.totals(), .windows = history, .health = loop.health(),
//                    .names = names, .monotonic_ns = now, .realtime_ns = wall,
//                    .period_ns = 1'000'000'000};
//   snapshot_writer.Publish(view);
//   api_server.Publish(view);
//   metrics_server.Publish(view);
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xenbaked/accounting.h"
#include "xenbaked/health.h"
#include "xenbaked/reconcile.h"
#include "xenbaked/windows.h"

namespace xenbaked::publish {

// Domain names by id, as the daemon last read them from xenstore. Untrusted text: set by
// less-privileged users, so every publisher shows it through SanitizeName.
using DomainNames = std::unordered_map<uint32_t, std::string>;

struct PublishView {
  const AccountingSnapshot& totals;  // since start
  const WindowHistory& windows;      // closed windows, length index 0 = 1 s, 1 = 10 s by default
  const DaemonHealth& health;
  const DomainNames& names;
  uint64_t monotonic_ns = 0;  // CLOCK_MONOTONIC at publication (heartbeat)
  uint64_t realtime_ns = 0;   // CLOCK_REALTIME at publication
  uint64_t period_ns = 0;     // how often the daemon publishes
  // The trace against the hypervisor's cpu_time (xenbaked/reconcile.h); null when the daemon does
  // not reconcile (disabled, or a hypervisor without the clock).
  const ReconcileReport* reconcile = nullptr;
};

// The additive per-domain counters, the same set in totals and in windows.
struct DomainCounters {
  uint64_t running_ns = 0;
  uint64_t runnable_ns = 0;
  uint64_t blocked_ns = 0;
  uint64_t offline_ns = 0;
  uint64_t dispatches = 0;
  uint64_t run_slices = 0;
  uint64_t slice_sum_ns = 0;
  uint64_t allocated_ns = 0;
  uint64_t allocations = 0;
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  uint64_t hypercalls = 0;
  uint64_t io_records = 0;
  uint64_t lost_records = 0;

  static DomainCounters Of(const DomainTotals& d);
  // In a fixed order, with names, for layouts and renderers that walk every counter.
  static constexpr std::array kFields = {
      &DomainCounters::running_ns,   &DomainCounters::runnable_ns,  &DomainCounters::blocked_ns,
      &DomainCounters::offline_ns,   &DomainCounters::dispatches,   &DomainCounters::run_slices,
      &DomainCounters::slice_sum_ns, &DomainCounters::allocated_ns, &DomainCounters::allocations,
      &DomainCounters::wakes,        &DomainCounters::blocks,       &DomainCounters::hypercalls,
      &DomainCounters::io_records,   &DomainCounters::lost_records,
  };
  static constexpr std::array<std::string_view, kFields.size()> kNames = {
      "running_ns", "runnable_ns",  "blocked_ns",   "offline_ns",   "dispatches",
      "run_slices", "slice_sum_ns", "allocated_ns", "allocations",  "wakes",
      "blocks",     "hypercalls",   "io_records",   "lost_records",
  };
  bool operator==(const DomainCounters&) const = default;
};

// The newest closed window of one length, indexed for lookups by domain and CPU.
class LatestWindow {
 public:
  LatestWindow(const WindowHistory& history, size_t length_index);

  uint64_t length_ns() const { return length_ns_; }
  // Zero when no window of this length has closed yet.
  uint64_t start_ns() const { return window_ ? window_->start_ns : 0; }
  uint64_t end_ns() const { return window_ ? window_->end_ns : 0; }
  bool closed() const { return window_ != nullptr; }
  // The domain incarnation's figures in the window, or null (not alive in it).
  const DomainTotals* Domain(uint32_t domid, uint64_t instance) const;
  const CpuTotals* Cpu(uint32_t cpu) const;

 private:
  uint64_t length_ns_ = 0;
  const Window* window_ = nullptr;
  std::unordered_map<uint64_t, const DomainTotals*> domains_;  // key: domid << 48 ^ instance
  std::unordered_map<uint32_t, const CpuTotals*> cpus_;
};

// The windows publishers show: the newest closed window of each configured length (1 s, 10 s).
std::vector<LatestWindow> LatestWindows(const WindowHistory& history);

// A name as it may be shown: invalid UTF-8, control characters (C0, C1), bidirectional overrides
// and invisible characters become '?', and it is clipped to `max_bytes` on a character boundary.
std::string SanitizeName(std::string_view untrusted, size_t max_bytes = 64);
// The sanitised name of `domid`, or "" when it has none.
std::string DomainName(const DomainNames& names, uint32_t domid, size_t max_bytes = 64);

}  // namespace xenbaked::publish
