// Windows as differences of engine snapshots.
#include "xenbaked/windows.h"

#include <algorithm>
#include <utility>

namespace xenbaked {
namespace {

uint64_t Minus(uint64_t later, uint64_t earlier) {
  return later > earlier ? later - earlier : 0;
}

VcpuTotals DiffVcpu(const VcpuTotals& later, const VcpuTotals* earlier) {
  if (earlier == nullptr) return later;
  VcpuTotals d = later;
  d.running_ns = Minus(later.running_ns, earlier->running_ns);
  d.runnable_ns = Minus(later.runnable_ns, earlier->runnable_ns);
  d.blocked_ns = Minus(later.blocked_ns, earlier->blocked_ns);
  d.offline_ns = Minus(later.offline_ns, earlier->offline_ns);
  d.unknown_ns = Minus(later.unknown_ns, earlier->unknown_ns);
  d.dispatches = Minus(later.dispatches, earlier->dispatches);
  d.wakes = Minus(later.wakes, earlier->wakes);
  d.blocks = Minus(later.blocks, earlier->blocks);
  return d;
}

// `earlier` is the same incarnation at the window's start, or null when it was born since.
DomainTotals DiffDomain(const DomainTotals& later, const DomainTotals* earlier) {
  DomainTotals d = later;
  d.slice_min_ns = 0;
  d.slice_max_ns = 0;
  if (earlier == nullptr) return d;
  d.running_ns = Minus(later.running_ns, earlier->running_ns);
  d.runnable_ns = Minus(later.runnable_ns, earlier->runnable_ns);
  d.blocked_ns = Minus(later.blocked_ns, earlier->blocked_ns);
  d.offline_ns = Minus(later.offline_ns, earlier->offline_ns);
  d.unknown_ns = Minus(later.unknown_ns, earlier->unknown_ns);
  d.dispatches = Minus(later.dispatches, earlier->dispatches);
  d.run_slices = Minus(later.run_slices, earlier->run_slices);
  d.slice_sum_ns = Minus(later.slice_sum_ns, earlier->slice_sum_ns);
  d.allocated_ns = Minus(later.allocated_ns, earlier->allocated_ns);
  d.allocations = Minus(later.allocations, earlier->allocations);
  d.wakes = Minus(later.wakes, earlier->wakes);
  d.blocks = Minus(later.blocks, earlier->blocks);
  d.hypercalls = Minus(later.hypercalls, earlier->hypercalls);
  d.io_records = Minus(later.io_records, earlier->io_records);
  d.lost_records = Minus(later.lost_records, earlier->lost_records);
  // vCPUs are listed by id, but not every id is listed (the engine keeps far ids apart), so a
  // vCPU's place may differ between the two: paired by id.
  for (size_t i = 0; i < d.vcpus.size(); ++i) {
    const uint32_t id = later.vcpus[i].vcpu;
    const VcpuTotals* prev = nullptr;
    if (i < earlier->vcpus.size() && earlier->vcpus[i].vcpu == id) {
      prev = &earlier->vcpus[i];
    } else {
      auto it = std::lower_bound(earlier->vcpus.begin(), earlier->vcpus.end(), id,
                                 [](const VcpuTotals& v, uint32_t x) { return v.vcpu < x; });
      if (it != earlier->vcpus.end() && it->vcpu == id) prev = &*it;
    }
    d.vcpus[i] = DiffVcpu(later.vcpus[i], prev);
  }
  return d;
}

CpuTotals DiffCpu(const CpuTotals& later, const CpuTotals* earlier) {
  if (earlier == nullptr) return later;
  CpuTotals d = later;
  d.first_tsc = earlier->last_tsc;
  d.records = Minus(later.records, earlier->records);
  d.elapsed_ns = Minus(later.elapsed_ns, earlier->elapsed_ns);
  d.accounted_ns = Minus(later.accounted_ns, earlier->accounted_ns);
  d.lost_records = Minus(later.lost_records, earlier->lost_records);
  d.lost_gap_ns = Minus(later.lost_gap_ns, earlier->lost_gap_ns);
  d.unknown_start_ns = Minus(later.unknown_start_ns, earlier->unknown_start_ns);
  d.wrap_records = Minus(later.wrap_records, earlier->wrap_records);
  d.hypercalls = Minus(later.hypercalls, earlier->hypercalls);
  d.io_records = Minus(later.io_records, earlier->io_records);
  d.unattributed = Minus(later.unattributed, earlier->unattributed);
  return d;
}

const DomainTotals* FindDomain(const std::vector<DomainTotals>& sorted, uint32_t domid) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), domid,
                             [](const DomainTotals& d, uint32_t id) { return d.domid < id; });
  return it != sorted.end() && it->domid == domid ? &*it : nullptr;
}

AnomalyCounts DiffAnomalies(const AnomalyCounts& later, const AnomalyCounts& earlier) {
  AnomalyCounts d;
  d.runstate_mismatch = Minus(later.runstate_mismatch, earlier.runstate_mismatch);
  d.switch_mismatch = Minus(later.switch_mismatch, earlier.switch_mismatch);
  d.bad_id = Minus(later.bad_id, earlier.bad_id);
  d.time_backwards = Minus(later.time_backwards, earlier.time_backwards);
  return d;
}

size_t SnapshotBytes(const AccountingSnapshot& s) {
  size_t bytes = sizeof s + s.cpus.capacity() * sizeof(CpuTotals);
  for (const DomainTotals& d : s.domains)
    bytes += sizeof(DomainTotals) + d.vcpus.capacity() * sizeof(VcpuTotals);
  return bytes;
}

}  // namespace

AccountingSnapshot DiffSnapshots(const AccountingSnapshot& later, const AccountingSnapshot& earlier,
                                 const std::vector<DomainTotals>& finals) {
  AccountingSnapshot d;
  d.at_ns = later.at_ns;
  d.tsc = later.tsc;
  d.cpu_khz = later.cpu_khz;
  d.records = Minus(later.records, earlier.records);
  d.lost_records = Minus(later.lost_records, earlier.lost_records);
  d.anomaly_kinds = DiffAnomalies(later.anomaly_kinds, earlier.anomaly_kinds);
  d.anomalies = d.anomaly_kinds.total();

  auto same_incarnation = [&](const DomainTotals& dom) -> const DomainTotals* {
    const DomainTotals* prev = FindDomain(earlier.domains, dom.domid);
    return prev != nullptr && prev->instance == dom.instance ? prev : nullptr;
  };
  for (const DomainTotals& dom : later.domains) {
    const DomainTotals* prev = same_incarnation(dom);
    if (prev != nullptr && prev->destroyed) continue;  // died before this window
    d.domains.push_back(DiffDomain(dom, prev));
  }
  for (const DomainTotals& fin : finals) {
    const DomainTotals* now = FindDomain(later.domains, fin.domid);
    if (now != nullptr && now->instance == fin.instance) continue;  // still listed: done above
    const DomainTotals* prev = same_incarnation(fin);
    if (prev != nullptr && prev->destroyed) continue;
    d.domains.push_back(DiffDomain(fin, prev));
  }
  std::stable_sort(d.domains.begin(), d.domains.end(),
                   [](const DomainTotals& a, const DomainTotals& b) { return a.domid < b.domid; });

  for (const CpuTotals& cpu : later.cpus) {
    auto it = std::find_if(earlier.cpus.begin(), earlier.cpus.end(),
                           [&](const CpuTotals& c) { return c.cpu == cpu.cpu; });
    d.cpus.push_back(DiffCpu(cpu, it == earlier.cpus.end() ? nullptr : &*it));
  }
  return d;
}

WindowHistory::WindowHistory(WindowConfig config) : config_(std::move(config)) {
  for (uint64_t length : config_.lengths_ns) {
    PerLength& l = lengths_.emplace_back();
    l.length_ns = std::max<uint64_t>(length, 1);
  }
}

void WindowHistory::Update(const AccountingSnapshot& snap) {
  if (!started_) {
    started_ = true;
    for (PerLength& l : lengths_) {
      l.start = snap;
      l.next_index = snap.at_ns / l.length_ns;
    }
  }
  for (PerLength& l : lengths_) {
    // Finals seen in a snapshot count too: the domain may be forgotten before the window closes.
    for (const DomainTotals& dom : snap.domains) {
      if (!dom.destroyed) continue;
      const bool known = std::any_of(l.finals.begin(), l.finals.end(), [&](const DomainTotals& f) {
        return f.domid == dom.domid && f.instance == dom.instance;
      });
      if (!known) l.finals.push_back(dom);
    }
    const uint64_t nominal_end = (l.next_index + 1) * l.length_ns;
    if (snap.at_ns < nominal_end) continue;
    Window w;
    w.length_ns = l.length_ns;
    w.index = l.next_index;
    w.start_ns = l.start.at_ns;
    w.end_ns = snap.at_ns;
    w.delta = DiffSnapshots(snap, l.start, l.finals);
    l.closed.push_back(std::move(w));
    while (l.closed.size() > config_.history) l.closed.pop_front();
    l.start = snap;
    l.finals.clear();
    l.next_index = snap.at_ns / l.length_ns;
  }
  totals_ = snap;
}

void WindowHistory::AddFinal(const DomainTotals& final_totals) {
  for (PerLength& l : lengths_) l.finals.push_back(final_totals);
}

uint64_t WindowHistory::next_boundary_ns() const {
  uint64_t next = ~uint64_t{0};
  for (const PerLength& l : lengths_) next = std::min(next, (l.next_index + 1) * l.length_ns);
  return next;
}

size_t WindowHistory::ApproxBytes() const {
  size_t bytes = sizeof *this + SnapshotBytes(totals_);
  for (const PerLength& l : lengths_) {
    bytes += SnapshotBytes(l.start) + l.finals.size() * sizeof(DomainTotals);
    for (const Window& w : l.closed) bytes += sizeof w + SnapshotBytes(w.delta);
  }
  return bytes;
}

WindowedAccounting::WindowedAccounting(AccountingEngine& engine, WindowHistory& history,
                                       std::function<void(const DomainTotals&)> on_final)
    : engine_(engine), history_(history), on_final_(std::move(on_final)) {
  engine_.OnFinal([this](const DomainTotals& fin) {
    history_.AddFinal(fin);
    if (on_final_) on_final_(fin);
  });
}

void WindowedAccounting::CrossBoundaries(uint64_t tsc) {
  if (!engine_.started()) return;  // the first timed record starts engine time
  if (next_boundary_tsc_ == 0) {
    // The engine's first snapshot opens every window.
    history_.Update(engine_.Snapshot(engine_.now_tsc()));
  }
  for (;;) {
    const uint64_t boundary_tsc = engine_.NsToTsc(history_.next_boundary_ns());
    if (tsc <= boundary_tsc) {
      next_boundary_tsc_ = boundary_tsc;
      return;
    }
    history_.Update(engine_.Snapshot(boundary_tsc));
  }
}

tracefmt::RunTaken WindowedAccounting::TakeRun(tracefmt::RunOffer offer) {
  if (offer.tsc > next_boundary_tsc_ &&
      tracefmt::HeaderHasTsc(tracefmt::Load32(offer.bytes.data()))) [[unlikely]]
    CrossBoundaries(offer.tsc);
  // The run stops before its first record past the boundary: the next offer starts there and
  // closes the windows first.
  offer.limit = std::min(offer.limit, next_boundary_tsc_);
  return engine_.TakeRun(offer);
}

void WindowedAccounting::Flush() {
  if (!engine_.started()) return;
  CrossBoundaries(engine_.now_tsc());
  history_.Update(engine_.Snapshot(engine_.now_tsc()));
}

}  // namespace xenbaked
