#include "xenbaked/publish/acct_records.h"

#include <unistd.h>

#include <random>

namespace xenbaked::publish {

using tracefmt::AcctCpuRecord;
using tracefmt::AcctDomainRecord;
using tracefmt::AcctFinalReason;
using tracefmt::AcctHostRecord;
using tracefmt::AcctRecord;

namespace {

uint64_t RatioPpm(uint64_t part, uint64_t whole) {
  if (whole == 0) return 1'000'000;
  return uint64_t(static_cast<double>(part) / static_cast<double>(whole) * 1e6 + 0.5);
}

AcctDomainRecord DomainRecord(const DomainTotals& d, const DomainNames& names) {
  AcctDomainRecord r;
  r.domid = d.domid;
  r.vcpus = uint32_t(d.vcpus.size());
  r.instance = d.instance;
  r.name = DomainName(names, d.domid, tracefmt::kAcctMaxNameBytes);
  r.running_ns = d.running_ns;
  r.runnable_ns = d.runnable_ns;
  r.blocked_ns = d.blocked_ns;
  r.offline_ns = d.offline_ns;
  r.unknown_ns = d.unknown_ns;
  r.dispatches = d.dispatches;
  r.run_slices = d.run_slices;
  r.slice_min_ns = d.slice_min_ns;
  r.slice_max_ns = d.slice_max_ns;
  r.slice_sum_ns = d.slice_sum_ns;
  r.allocated_ns = d.allocated_ns;
  r.allocations = d.allocations;
  r.wakes = d.wakes;
  r.blocks = d.blocks;
  r.hypercalls = d.hypercalls;
  r.io_records = d.io_records;
  r.lost_records = d.lost_records;
  return r;
}

AcctCpuRecord CpuRecord(const CpuTotals& c) {
  AcctCpuRecord r;
  r.cpu = c.cpu;
  r.elapsed_ns = c.elapsed_ns;
  r.accounted_ns = c.accounted_ns;
  r.records = c.records;
  r.lost_records = c.lost_records;
  r.lost_gap_ns = c.lost_gap_ns;
  const uint64_t explained = c.elapsed_ns > c.lost_gap_ns ? c.elapsed_ns - c.lost_gap_ns : 0;
  r.capture_ratio_ppm = RatioPpm(c.accounted_ns, explained);
  return r;
}

}  // namespace

std::vector<AcctRecord> IntervalRecords(const Window& window, uint64_t realtime_ns,
                                        const DomainNames& names,
                                        const AccountingLogStats& log_stats,
                                        const DaemonHealth& health,
                                        const ReconcileReport* reconcile) {
  const AccountingSnapshot& delta = window.delta;
  // The newest reconciliation's totals of each live incarnation.
  auto reconciled = [&](const DomainTotals& d) -> const DomainReconcile* {
    return reconcile == nullptr || d.destroyed ? nullptr : reconcile->Find(d.domid, d.instance);
  };
  std::vector<AcctRecord> out;
  out.reserve(delta.domains.size() + delta.cpus.size() + 1);
  uint64_t live = 0;
  for (const DomainTotals& d : delta.domains) {
    live += d.destroyed ? 0 : 1;
    AcctDomainRecord r = DomainRecord(d, names);
    r.window_start_ns = std::max(window.start_ns, d.first_seen_ns);
    r.window_end_ns = window.end_ns;
    r.realtime_end_ns = realtime_ns;
    if (const DomainReconcile* rec = reconciled(d)) {
      r.reconcile_trace_running_ns = rec->trace_running_total_ns;
      r.reconcile_xen_cpu_ns = rec->xen_cpu_total_ns;
    }
    out.emplace_back(std::move(r));
  }
  for (const CpuTotals& c : delta.cpus) {
    AcctCpuRecord r = CpuRecord(c);
    r.window_start_ns = window.start_ns;
    r.window_end_ns = window.end_ns;
    r.realtime_end_ns = realtime_ns;
    out.emplace_back(r);
  }
  AcctHostRecord host;
  host.window_start_ns = window.start_ns;
  host.window_end_ns = window.end_ns;
  host.realtime_end_ns = realtime_ns;
  host.records = delta.records;
  host.lost_records = delta.lost_records;
  host.anomalies = delta.anomalies;
  host.live_domains = live;
  host.log_write_errors = log_stats.write_errors;
  host.log_dropped_records = log_stats.dropped_records;
  host.run_lost_records = health.lost_records;
  host.run_lost_records_at_start = health.lost_records_at_start;
  if (reconcile != nullptr) {
    host.reconcile_trace_running_ns = reconcile->host.trace_running_total_ns;
    host.reconcile_xen_cpu_ns = reconcile->host.xen_cpu_total_ns;
    host.reconcile_unexplained_periods = reconcile->unexplained_periods;
  }
  out.emplace_back(host);
  return out;
}

AcctDomainRecord FinalRecord(const DomainTotals& domain, AcctFinalReason reason,
                             uint64_t realtime_ns, const DomainNames& names) {
  AcctDomainRecord r = DomainRecord(domain, names);
  r.final_reason = reason;
  r.window_start_ns = domain.first_seen_ns;
  r.window_end_ns = domain.last_seen_ns;
  r.realtime_end_ns = realtime_ns;
  return r;
}

std::vector<AcctRecord> ShutdownRecords(const AccountingSnapshot& totals, uint64_t realtime_ns,
                                        const DomainNames& names) {
  std::vector<AcctRecord> out;
  for (const DomainTotals& d : totals.domains) {
    if (!d.destroyed) {
      out.emplace_back(FinalRecord(d, AcctFinalReason::kShutdown, realtime_ns, names));
    }
  }
  return out;
}

tracefmt::AcctRunRecord RunStartRecord(uint64_t start_realtime_ns) {
  std::random_device entropy;
  tracefmt::AcctRunRecord run;
  run.phase = tracefmt::AcctRunPhase::kStart;
  run.pid = uint32_t(::getpid());
  run.run_id = uint64_t{entropy()} << 32 | entropy();
  run.start_realtime_ns = start_realtime_ns;
  run.realtime_ns = start_realtime_ns;
  return run;
}

tracefmt::AcctRunRecord RunEndRecord(const tracefmt::AcctRunRecord& run, const DaemonHealth& health,
                                     const AccountingSnapshot& totals, uint64_t realtime_ns,
                                     const AccountingLogStats& log_stats) {
  tracefmt::AcctRunRecord end = run;
  end.phase = tracefmt::AcctRunPhase::kEnd;
  end.realtime_ns = realtime_ns;
  end.engine_ns = totals.at_ns;
  end.records = health.records;
  end.lost_records = health.lost_records;
  end.lost_records_at_start = health.lost_records_at_start;
  end.log_write_errors = log_stats.write_errors;
  end.log_dropped_records = log_stats.dropped_records;
  return end;
}

}  // namespace xenbaked::publish
