#include "xenbaked/reconcile.h"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>

namespace xenbaked {

namespace {

uint64_t TicksToNs(uint64_t ticks, uint64_t cpu_khz) {
  if (cpu_khz == 0) return 0;
  const auto ns = static_cast<unsigned __int128>(ticks) * 1'000'000u / cpu_khz;
  return ns > std::numeric_limits<uint64_t>::max() ? std::numeric_limits<uint64_t>::max()
                                                   : static_cast<uint64_t>(ns);
}

uint64_t NsToTicks(uint64_t ns, uint64_t cpu_khz) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(ns) * cpu_khz / 1'000'000u);
}

// Where the trace stops vouching for each vCPU (see the top of reconcile.h), and when Xen was read.
class Frontier {
 public:
  Frontier(const AccountingSnapshot& snap, const VcpuCpuTimes& xen, const ReconcileConfig& config)
      : khz_(snap.cpu_khz) {
    for (const CpuTotals& c : snap.cpus) {
      last_tsc_.emplace_back(c.cpu, c.last_tsc);
      oldest_ = std::min(oldest_, c.last_tsc);
    }
    if (snap.cpus.empty()) oldest_ = snap.tsc;
    // The engine's CPUs come by id already; sort anyway, the lookup depends on it.
    std::sort(last_tsc_.begin(), last_tsc_.end());
    const uint64_t plausible = NsToTicks(config.max_plausible_lag_ns, khz_);
    read_tsc_known_ =
        xen.read_tsc != 0 && xen.read_tsc >= snap.tsc && xen.read_tsc - snap.tsc <= plausible;
    read_tsc_ = read_tsc_known_ ? xen.read_tsc : snap.tsc + NsToTicks(config.fallback_lag_ns, khz_);
  }

  bool read_tsc_known() const { return read_tsc_known_; }

  // Running time of `v` that Xen's read may include and the trace does not vouch for yet.
  uint64_t LagNs(const VcpuTotals& v) const {
    uint64_t vouched = oldest_;
    if (v.state == tracefmt::Runstate::kRunning) {
      auto it = std::lower_bound(last_tsc_.begin(), last_tsc_.end(),
                                 std::pair<uint32_t, uint64_t>(v.last_cpu, 0));
      if (it != last_tsc_.end() && it->first == v.last_cpu) vouched = it->second;
    }
    return read_tsc_ > vouched ? TicksToNs(read_tsc_ - vouched, khz_) : 0;
  }

 private:
  uint64_t khz_;
  std::vector<std::pair<uint32_t, uint64_t>> last_tsc_;  // (cpu, last record's TSC)
  uint64_t oldest_ = std::numeric_limits<uint64_t>::max();
  uint64_t read_tsc_ = 0;
  bool read_tsc_known_ = false;
};

}  // namespace

const DomainReconcile* ReconcileReport::Find(uint32_t domid, uint64_t instance) const {
  auto it = std::lower_bound(domains.begin(), domains.end(), domid,
                             [](const DomainReconcile& d, uint32_t id) { return d.domid < id; });
  return it != domains.end() && it->domid == domid && it->instance == instance ? &*it : nullptr;
}

Reconciler::Reconciler(ReconcileConfig config) : config_(config) {}

const ReconcileReport& Reconciler::Update(const AccountingSnapshot& snap, const VcpuCpuTimes& xen,
                                          uint64_t period_ns) {
  ++generation_;
  ++report_.reads;
  report_.period_ns = report_.reads > 1 ? period_ns : 0;
  report_.vcpus_read = xen.vcpus.size();
  report_.domains.clear();
  const Frontier frontier(snap, xen, config_);
  report_.read_tsc_known = frontier.read_tsc_known();

  // The live incarnation of each domain id (a destroyed one may still be listed next to it).
  std::unordered_map<uint32_t, const DomainTotals*> trace;
  trace.reserve(snap.domains.size());
  for (const DomainTotals& d : snap.domains)
    if (!d.destroyed || trace.find(d.domid) == trace.end()) trace[d.domid] = &d;

  std::map<uint32_t, DomainReconcile> period;  // domains with a vCPU compared, by domid
  for (const VcpuCpuTime& v : xen.vcpus) {
    auto td_it = trace.find(v.domid);
    const DomainTotals* td = td_it == trace.end() ? nullptr : td_it->second;
    const VcpuTotals* tv = td != nullptr && v.vcpu < td->vcpus.size() && td->vcpus[v.vcpu].seen
                               ? &td->vcpus[v.vcpu]
                               : nullptr;
    const VcpuState now{.trace_instance = td ? td->instance : 0,
                        .xen_instance = v.instance,
                        .running_ns = tv ? tv->running_ns : 0,
                        .unknown_ns = tv ? tv->unknown_ns : 0,
                        .cpu_time_ns = v.cpu_time_ns,
                        .lag_ns = tv ? frontier.LagNs(*tv) : 0,
                        .generation = generation_,
                        .trace_seen = tv != nullptr};

    // The domain's incarnation on both sides: a change restarts its totals.
    DomainState& ds = domains_[v.domid];
    if (ds.generation != generation_) {
      if (ds.generation == 0 || ds.trace_instance != now.trace_instance ||
          ds.xen_instance != now.xen_instance)
        ds = DomainState{.trace_instance = now.trace_instance, .xen_instance = now.xen_instance};
      ds.generation = generation_;
    }

    auto [it, inserted] = vcpus_.try_emplace(uint64_t{v.domid} << 32 | v.vcpu, now);
    if (inserted) {
      ++report_.vcpus_appeared;
      continue;
    }
    VcpuState& prev = it->second;
    const bool reset = prev.xen_instance != now.xen_instance || now.cpu_time_ns < prev.cpu_time_ns;
    const bool comparable = !reset && prev.trace_seen && now.trace_seen &&
                            prev.trace_instance == now.trace_instance &&
                            now.running_ns >= prev.running_ns && now.unknown_ns >= prev.unknown_ns;
    if (reset) ++report_.resets;
    if (comparable) {
      DomainReconcile& d = period[v.domid];
      const uint64_t dx = now.cpu_time_ns - prev.cpu_time_ns;
      ++d.vcpus;
      d.trace_running_ns += now.running_ns - prev.running_ns;
      d.xen_cpu_ns += dx;
      d.unknown_ns += now.unknown_ns - prev.unknown_ns;
      d.lag_before_ns += prev.lag_ns;
      d.lag_after_ns += now.lag_ns;
      d.tolerance_ns +=
          config_.tolerance_ns + static_cast<uint64_t>(config_.relative_tolerance * dx);
    }
    prev = now;
  }

  // vCPUs the hypervisor no longer lists: their time since the last read goes unmatched.
  std::erase_if(vcpus_, [&](const auto& kv) {
    const bool gone = kv.second.generation != generation_;
    report_.vcpus_vanished += gone ? 1 : 0;
    return gone;
  });
  std::erase_if(domains_, [&](const auto& kv) { return kv.second.generation != generation_; });

  DomainReconcile host;
  host.trace_running_total_ns = report_.host.trace_running_total_ns;
  host.xen_cpu_total_ns = report_.host.xen_cpu_total_ns;
  host.unknown_total_ns = report_.host.unknown_total_ns;
  host.unexplained_periods = report_.host.unexplained_periods;
  for (auto& [domid, d] : period) {
    DomainState& ds = domains_[domid];
    d.domid = domid;
    d.instance = ds.trace_instance;
    ds.trace_running_total_ns += d.trace_running_ns;
    ds.xen_cpu_total_ns += d.xen_cpu_ns;
    ds.unknown_total_ns += d.unknown_ns;
    if (!d.explained()) {
      ++ds.unexplained_periods;
      ++report_.unexplained_periods;
    }
    d.trace_running_total_ns = ds.trace_running_total_ns;
    d.xen_cpu_total_ns = ds.xen_cpu_total_ns;
    d.unknown_total_ns = ds.unknown_total_ns;
    d.unexplained_periods = ds.unexplained_periods;

    host.vcpus += d.vcpus;
    host.trace_running_ns += d.trace_running_ns;
    host.xen_cpu_ns += d.xen_cpu_ns;
    host.unknown_ns += d.unknown_ns;
    host.lag_before_ns += d.lag_before_ns;
    host.lag_after_ns += d.lag_after_ns;
    host.tolerance_ns += d.tolerance_ns;
    report_.domains.push_back(d);
  }
  host.trace_running_total_ns += host.trace_running_ns;
  host.xen_cpu_total_ns += host.xen_cpu_ns;
  host.unknown_total_ns += host.unknown_ns;
  if (host.vcpus > 0 && !host.explained()) ++host.unexplained_periods;
  report_.host = host;
  return report_;
}

}  // namespace xenbaked
