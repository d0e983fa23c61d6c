// xenbaked/health.h — how the daemon itself is doing: what the loop measures and publishes.
//
// The drain loop owns one DaemonHealth, updates it on every pass and hands a copy to the
// publishers each interval, next to the accounting snapshot. Everything is a plain value: counts
// since start, gauges as of the last pass, and the drain latency distribution. Times are
// nanoseconds; `*_unix_ns` are wall-clock (CLOCK_REALTIME), the rest come from the loop's
// injected steady clock.
//
//   const DaemonHealth& h = loop.health();
//   fmt::print("wakes irq={} timer={} lost={} p.max={}ns\n", h.wakes_irq, h.wakes_timer,
//              h.lost_records, h.drain_latency.max_ns);
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace xenbaked {

// A latency distribution of drain passes (DaemonHealth says which). Fixed log2 buckets so the
// struct stays a value that any publisher can copy and render without allocating.
struct LatencyHistogram {
  // Bucket i counts samples in [2^(i-1), 2^i) ns (bucket 0: below 1 ns); the last is open-ended.
  static constexpr size_t kBuckets = 40;  // 2^39 ns ≈ 9 minutes
  std::array<uint64_t, kBuckets> buckets{};
  uint64_t count = 0;
  uint64_t sum_ns = 0;
  uint64_t min_ns = 0;  // 0 when count == 0
  uint64_t max_ns = 0;

  void Add(uint64_t ns);
  double mean_ns() const { return count ? static_cast<double>(sum_ns) / count : 0.0; }
  // Upper bound in ns of bucket i (inclusive upper edge for rendering, e.g. a Prometheus `le`).
  static uint64_t BucketUpperNs(size_t i) {
    return i + 1 >= kBuckets ? ~uint64_t{0} : (uint64_t{1} << i);
  }
  // Smallest bucket edge below which at least `q` (0..1) of the samples lie.
  uint64_t QuantileUpperNs(double q) const;
  bool operator==(const LatencyHistogram&) const = default;
};

struct CpuHealth {
  uint32_t cpu = 0;
  uint32_t buffer_bytes = 0;     // data area size
  uint32_t fill_bytes = 0;       // unconsumed bytes found at the start of the last pass
  uint32_t peak_fill_bytes = 0;  // largest fill_bytes seen
  double fill_ratio() const {
    return buffer_bytes ? static_cast<double>(fill_bytes) / buffer_bytes : 0.0;
  }
  uint64_t records = 0;  // drained since start
  uint64_t bytes = 0;
  uint64_t lost_records = 0;  // sum of the counts in this CPU's TRC_LOST_RECORDS records
  // The part of lost_records lost before the daemon started: reported in the records found in
  // the buffer at start, or by the first record the hypervisor wrote after the daemon first made
  // room (a buffer full since boot). lost_records - lost_records_at_start is loss during the run.
  uint64_t lost_records_at_start = 0;
  uint64_t anomalies = 0;      // ring pointer or record anomalies (tracefmt::RingAnomaly)
  uint64_t bytes_skipped = 0;  // given up because of anomalies
  uint64_t budget_hits = 0;    // passes that stopped at the per-pass budget with work left
  uint64_t last_tsc = 0;       // newest record TSC drained
};

// The smallest trace buffer size (pages per CPU) the measured load needs (xenbaked/tbuf_advice.h
// has the rule): Xen's boot option tbuf_size=N.
struct TbufAdvice {
  bool ready = false;              // enough intervals measured; the rest is meaningful only then
  uint32_t recommended_pages = 0;  // tbuf_size=N: pages per CPU
  uint32_t current_pages = 0;
  uint32_t max_pages = 0;         // Xen's largest for this host
  bool capped = false;            // the load needs more than max_pages
  bool loss_seen = false;         // records lost during the recent intervals
  double peak_bytes_per_s = 0.0;  // worst CPU, worst recent interval, dropped records included
  uint32_t peak_cpu = 0;
  uint64_t worst_latency_ns = 0;  // worst drain latency over the recent intervals
  size_t intervals = 0;           // recent intervals the advice rests on
  bool operator==(const TbufAdvice&) const = default;
};

struct DaemonHealth {
  std::string backend;  // "xen", "simulated"
  std::string version;
  uint64_t start_unix_ns = 0;  // daemon start
  uint64_t uptime_ns = 0;
  uint64_t last_drain_unix_ns = 0;
  uint64_t cpu_khz = 0;
  uint32_t pages_per_cpu = 0;
  uint32_t event_mask = 0;

  uint64_t wakes_irq = 0;     // the trace interrupt (a buffer crossed half full)
  uint64_t wakes_timer = 0;   // the backstop timer (CPUs that never reach half full)
  uint64_t wakes_repost = 0;  // follow-up passes because a CPU hit its per-pass budget
  uint64_t passes = 0;

  uint64_t records = 0;  // all CPUs, since start
  uint64_t bytes = 0;
  double records_per_s = 0.0;  // over the last publication interval
  uint64_t lost_records = 0;   // all CPUs (TRC_LOST_RECORDS counts)
  // Of lost_records, those lost before the daemon started (CpuHealth::lost_records_at_start).
  uint64_t lost_records_at_start = 0;
  uint64_t anomalies = 0;         // all CPUs
  uint64_t anomalies_logged = 0;  // the rest were rate-limited out of the log, still counted
  uint64_t late_records = 0;      // reached the merger older than a watermark already emitted
  uint64_t merger_pending = 0;    // records held back waiting for the watermark
  uint64_t initial_bytes_discarded = 0;  // found at start with --initial-contents=discard

  bool capture_enabled = false;
  uint64_t capture_bytes = 0;
  uint64_t capture_errors = 0;  // failed writes (e.g. ENOSPC); the chunk is counted as lost
  uint64_t capture_chunks_lost = 0;
  std::string capture_last_error;

  uint64_t publish_errors = 0;

  // Online CPUs without a trace buffer: Xen allocates buffers once, for the CPUs online then, and
  // drops a later CPU's records without counting them, so nothing of its time is accounted.
  std::vector<uint32_t> untraced_cpus;
  bool online_cpus_known = false;  // false when the hypervisor could not list its online CPUs

  // Wake to the pass's last cons published. The wake is when the interrupt arrived (seen by a
  // thread of its own, so time the loop spent on other handlers counts) or the backstop's due
  // time; a backlog's re-posted passes count from the original wake.
  LatencyHistogram drain_latency;
  // drain_latency in two parts: wake to the pass's start (the loop busy elsewhere, or slow to be
  // scheduled; first passes of a wake only) and the pass itself (every pass).
  LatencyHistogram wake_to_drain_start;
  LatencyHistogram drain_pass;
  uint64_t irq_to_drain_max_ns = 0;  // worst wake_to_drain_start of an interrupt wake
  // The worst drain_latency sample between the two latest DrainLoop::SampleHealth calls.
  uint64_t drain_latency_interval_max_ns = 0;
  TbufAdvice tbuf_advice;       // the daemon's; the loop leaves it empty
  std::vector<CpuHealth> cpus;  // one per CPU with a buffer, ascending id
};

}  // namespace xenbaked
