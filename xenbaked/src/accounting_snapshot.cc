// What a snapshot of the accounting engine publishes: totals per domain, vCPU and CPU, with
// open intervals counted only as far as the trace vouches for them (totals only grow).
#include <algorithm>
#include <cstdint>

#include "accounting_engine.h"

namespace xenbaked {

using namespace engine_detail;  // NOLINT: this engine's own state

// ------------------------------------------------------------------------------------------------
// Snapshots

uint64_t AccountingEngine::Impl::MinLastTsc(uint64_t fallback) const {
  uint64_t min = ~uint64_t{0};
  for (const CpuState& c : cpus)
    if (c.seen) min = std::min(min, c.last_tsc);
  return min == ~uint64_t{0} ? fallback : min;
}

// An open interval is published only as far as nothing can still take it back (a published
// total never goes down, and must stay true). A loss on CPU c is reported after the fact, but
// it begins after the last record c delivered. So a vCPU running on c is vouched for up to c's
// last record; a vCPU not running, whose next change any CPU may write, up to the oldest last
// record over all CPUs; a loss gap already reported decides its part of the interval at once.
// Once the input has ended nothing can come: every interval runs to the snapshot.
void AccountingEngine::Impl::PublishOpen(const VcpuState& v, uint64_t tsc, uint64_t min_last_tsc,
                                         std::array<uint64_t, 5>& ticks,
                                         std::vector<uint64_t>* cpu_open) const {
  if (v.link_pending) {
    // A contradiction held back for the reorder tolerance: what was published of its interval
    // stays; the rest is unknown once no record can still come in time to settle it.
    const uint64_t published = std::max(v.link_since, v.link_published);
    ticks[static_cast<size_t>(v.link_from)] += published - v.link_since;
    if (v.link_from == Runstate::kRunning && cpu_open != nullptr)
      (*cpu_open)[v.link_cpu] += published - v.link_since;
    if (input_ended || min_last_tsc > v.link_at + reorder_ticks)
      ticks[kUnknown] += v.link_at > published ? v.link_at - published : 0;
  }
  // Tail pieces (HoldTail): as far as a not-running open interval is, the oldest last record
  // over the CPUs, before which no loss still to be reported can begin.
  const TailOverflow& o = v.overflow;
  if (!o.empty() && (input_ended || o.published || min_last_tsc >= o.to)) {
    for (size_t s = 0; s < 3; ++s) ticks[s + 1] += o.ticks[s];
    o.published = true;
  }
  for (uint8_t i = 0; i < v.tail_count; ++i) {
    const TailPiece& p = v.Tail(i);
    const uint64_t piece_until = input_ended ? p.to : VouchedUntil(p, min_last_tsc);
    ticks[p.bucket] += piece_until - p.from;
    p.published = piece_until;
  }
  const bool running = v.known && v.state == Runstate::kRunning;
  uint64_t until = tsc;
  if (!input_ended) until = std::min(tsc, running ? cpus[v.cpu].last_tsc : min_last_tsc);
  until = std::max({until, v.since_tsc, v.published_tsc});
  const uint64_t since = v.since_tsc;
  const size_t state = static_cast<size_t>(v.state);
  if (!v.known) {
    ticks[kUnknown] += until - since;
  } else if (!v.doubtful()) {
    ticks[state] += until - since;
    if (running && cpu_open != nullptr) (*cpu_open)[v.cpu] += until - since;
  } else {
    // Before the gap: its state; the gap: unknown; after it the next record will tell, so it
    // waits (or, the input ended, nothing will: unknown).
    const uint64_t gap_from = std::clamp(v.doubt_from, since, until);
    const uint64_t gap_to = std::clamp(v.doubt_to, gap_from, until);
    ticks[state] += gap_from - since;
    ticks[kUnknown] += gap_to - gap_from;
    if (input_ended)
      ticks[kUnknown] += until - gap_to;
    else
      until = gap_to;
  }
  v.published_tsc = until;
}

DomainTotals AccountingEngine::Impl::Totals(const DomainState& d, uint64_t tsc,
                                            uint64_t min_last_tsc,
                                            std::vector<uint64_t>* cpu_open) const {
  DomainTotals t;
  t.domid = d.domid;
  t.instance = d.instance;
  t.destroyed = d.destroyed;
  t.first_seen_ns = EngineNs(d.first_seen_tsc);
  t.last_seen_ns = EngineNs(d.last_seen_tsc);
  t.run_slices = d.run_slices;
  t.slice_min_ns = d.run_slices == 0 ? 0 : clock.ToNs(d.slice_min_ticks);
  t.slice_max_ns = clock.ToNs(d.slice_max_ticks);
  t.slice_sum_ns = clock.ToNs(d.slice_sum_ticks);
  t.allocated_ns = d.allocated_ns;
  t.allocations = d.allocations;
  t.hypercalls = d.activity.hypercalls;
  t.io_records = d.activity.io_records;
  t.lost_records = d.lost_records;
  t.vcpus.reserve(d.vcpus.size() + d.sparse_vcpus.size());
  auto add = [&](uint32_t id, const VcpuState& v) {
    std::array<uint64_t, 5> ticks = v.ticks;
    if (v.seen && !d.destroyed) PublishOpen(v, tsc, min_last_tsc, ticks, cpu_open);
    VcpuTotals& vt = t.vcpus.emplace_back();
    vt.vcpu = id;
    vt.seen = v.seen;
    vt.running_ns = clock.ToNs(ticks[0]);
    vt.runnable_ns = clock.ToNs(ticks[1]);
    vt.blocked_ns = clock.ToNs(ticks[2]);
    vt.offline_ns = clock.ToNs(ticks[3]);
    vt.unknown_ns = clock.ToNs(ticks[kUnknown]);
    vt.dispatches = v.dispatches;
    vt.wakes = v.wakes;
    vt.blocks = v.blocks;
    vt.state = v.state;
    vt.last_cpu = v.cpu;
    t.running_ns += vt.running_ns;
    t.runnable_ns += vt.runnable_ns;
    t.blocked_ns += vt.blocked_ns;
    t.offline_ns += vt.offline_ns;
    t.unknown_ns += vt.unknown_ns;
    t.dispatches += vt.dispatches;
    t.wakes += vt.wakes;
    t.blocks += vt.blocks;
  };
  for (size_t i = 0; i < d.vcpus.size(); ++i) add(static_cast<uint32_t>(i), d.vcpus[i]);
  for (const auto& [id, v] : d.sparse_vcpus) add(id, v);
  return t;
}

double CpuTotals::capture_ratio() const {
  const uint64_t expected = elapsed_ns > lost_gap_ns ? elapsed_ns - lost_gap_ns : 0;
  if (expected == 0) return 1.0;
  return static_cast<double>(accounted_ns) / static_cast<double>(expected);
}

AccountingSnapshot AccountingEngine::Snapshot(uint64_t tsc) const {
  const Impl& e = *impl_;
  AccountingSnapshot s;
  s.tsc = tsc;
  s.cpu_khz = e.clock.cpu_khz();
  s.at_ns = e.EngineNs(tsc);
  s.records = e.Records();
  s.lost_records = e.lost_records;
  s.anomaly_kinds = e.anomalies;
  s.anomalies = e.anomalies.total();
  std::vector<uint64_t> cpu_open(e.cpus.size(), 0);
  const uint64_t min_last_tsc = e.MinLastTsc(tsc);
  for (uint32_t domid = 0; domid < kDomainTableSize; ++domid) {
    const int32_t slot = e.slot_of_domid[domid];
    if (slot == kNoSlot || !e.slots[slot].in_use) continue;
    s.domains.push_back(e.Totals(e.slots[slot], tsc, min_last_tsc, &cpu_open));
  }
  for (uint32_t id = 0; id < e.cpus.size(); ++id) {
    const CpuState& c = e.cpus[id];
    if (c.records == 0) continue;
    CpuTotals& ct = s.cpus.emplace_back();
    ct.cpu = id;
    ct.records = c.records;
    ct.first_tsc = c.first_tsc;
    ct.last_tsc = c.last_tsc;
    if (c.seen) {
      const uint64_t end = std::max(c.last_tsc, tsc);
      ct.elapsed_ns = e.clock.ToNs(end - c.first_tsc);
      const uint64_t known_from = c.dispatched ? c.first_dispatch_tsc : end;
      ct.unknown_start_ns = e.clock.ToNs(known_from - c.first_tsc);
    }
    ct.accounted_ns = e.clock.ToNs(c.accounted_ticks + cpu_open[id]);
    ct.lost_records = c.lost_records;
    ct.lost_gap_ns = e.clock.ToNs(c.lost_gap_ticks);
    ct.wrap_records = c.wrap_records;
    ct.hypercalls = c.hypercalls;
    ct.io_records = c.io_records;
    ct.unattributed = c.unattributed.either;
  }
  return s;
}

}  // namespace xenbaked
