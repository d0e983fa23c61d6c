#include "xenbaked/publish/acct_records.h"

namespace xenbaked::publish {

using tracefmt::AcctCpuRecord;
using tracefmt::AcctDomainRecord;
using tracefmt::AcctFinalReason;
using tracefmt::AcctHostRecord;
using tracefmt::AcctRecord;

namespace {

std::string NameOf(uint32_t domid, const DomainNames& names) {
  auto it = names.find(domid);
  return it == names.end() ? std::string() : it->second;
}

// Counters that add up over time; the interval record holds their growth. Slice min/max are
// not among them: they stay the life-so-far values.
constexpr std::array kAdditive = {
    &AcctDomainRecord::running_ns,   &AcctDomainRecord::runnable_ns,
    &AcctDomainRecord::blocked_ns,   &AcctDomainRecord::offline_ns,
    &AcctDomainRecord::dispatches,   &AcctDomainRecord::run_slices,
    &AcctDomainRecord::slice_sum_ns, &AcctDomainRecord::allocated_ns,
    &AcctDomainRecord::allocations,  &AcctDomainRecord::wakes,
    &AcctDomainRecord::blocks,       &AcctDomainRecord::hypercalls,
    &AcctDomainRecord::io_records,   &AcctDomainRecord::lost_records,
};

// `now - before`, never negative (a counter that went backwards means a new incarnation the
// engine did not tell apart; the interval then holds what the new one has).
uint64_t Growth(uint64_t now, uint64_t before) {
  return now >= before ? now - before : now;
}

uint64_t RatioPpm(uint64_t part, uint64_t whole) {
  if (whole == 0) return 1'000'000;
  return uint64_t(static_cast<double>(part) / static_cast<double>(whole) * 1e6 + 0.5);
}

AcctCpuRecord CpuInterval(const CpuTotals& now, const CpuTotals& before) {
  AcctCpuRecord c;
  c.cpu = now.cpu;
  c.elapsed_ns = Growth(now.elapsed_ns, before.elapsed_ns);
  c.accounted_ns = Growth(now.accounted_ns, before.accounted_ns);
  c.records = Growth(now.records, before.records);
  c.lost_records = Growth(now.lost_records, before.lost_records);
  c.lost_gap_ns = Growth(now.lost_gap_ns, before.lost_gap_ns);
  const uint64_t explained = c.elapsed_ns > c.lost_gap_ns ? c.elapsed_ns - c.lost_gap_ns : 0;
  c.capture_ratio_ppm = RatioPpm(c.accounted_ns, explained);
  return c;
}

}  // namespace

AcctDomainRecord AcctRecordBuilder::Cumulative(const DomainTotals& d) {
  AcctDomainRecord r;
  r.domid = d.domid;
  r.vcpus = uint32_t(d.vcpus.size());
  r.instance = d.instance;
  r.window_start_ns = d.first_seen_ns;
  r.window_end_ns = d.last_seen_ns;
  r.running_ns = d.running_ns;
  r.runnable_ns = d.runnable_ns;
  r.blocked_ns = d.blocked_ns;
  r.offline_ns = d.offline_ns;
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

std::vector<AcctRecord> AcctRecordBuilder::Interval(const AccountingSnapshot& snapshot,
                                                    uint64_t realtime_ns, const DomainNames& names,
                                                    const AccountingLogStats& log_stats) {
  std::vector<AcctRecord> out;
  out.reserve(snapshot.domains.size() + snapshot.cpus.size() + 1);
  const uint64_t start_ns = last_at_ns_;
  uint64_t live = 0;
  for (const DomainTotals& d : snapshot.domains) {
    if (d.destroyed) continue;  // its final record is the engine's OnFinal
    ++live;
    AcctDomainRecord now = Cumulative(d);
    AcctDomainRecord& before = last_domain_[{d.domid, d.instance}];
    AcctDomainRecord interval = now;
    for (auto member : kAdditive) interval.*member = Growth(now.*member, before.*member);
    interval.window_start_ns = std::max(start_ns, d.first_seen_ns);
    interval.window_end_ns = snapshot.at_ns;
    interval.realtime_end_ns = realtime_ns;
    interval.name = NameOf(d.domid, names);
    before = std::move(now);
    out.emplace_back(std::move(interval));
  }
  for (const CpuTotals& cpu : snapshot.cpus) {
    CpuTotals& before = last_cpu_[cpu.cpu];
    AcctCpuRecord c = CpuInterval(cpu, before);
    c.window_start_ns = start_ns;
    c.window_end_ns = snapshot.at_ns;
    c.realtime_end_ns = realtime_ns;
    before = cpu;
    out.emplace_back(c);
  }
  AcctHostRecord host;
  host.window_start_ns = start_ns;
  host.window_end_ns = snapshot.at_ns;
  host.realtime_end_ns = realtime_ns;
  host.records = Growth(snapshot.records, last_records_);
  host.lost_records = Growth(snapshot.lost_records, last_lost_);
  host.anomalies = Growth(snapshot.anomalies, last_anomalies_);
  host.live_domains = live;
  host.log_write_errors = log_stats.write_errors;
  host.log_dropped_records = log_stats.dropped_records;
  out.emplace_back(host);
  last_at_ns_ = snapshot.at_ns;
  last_records_ = snapshot.records;
  last_lost_ = snapshot.lost_records;
  last_anomalies_ = snapshot.anomalies;
  return out;
}

AcctDomainRecord AcctRecordBuilder::Final(const DomainTotals& domain, AcctFinalReason reason,
                                          uint64_t realtime_ns, const DomainNames& names) {
  last_domain_.erase({domain.domid, domain.instance});
  AcctDomainRecord r = Cumulative(domain);
  r.final_reason = reason;
  r.realtime_end_ns = realtime_ns;
  r.name = NameOf(domain.domid, names);
  return r;
}

std::vector<AcctRecord> AcctRecordBuilder::Shutdown(const AccountingSnapshot& snapshot,
                                                    uint64_t realtime_ns,
                                                    const DomainNames& names) {
  std::vector<AcctRecord> out;
  for (const DomainTotals& d : snapshot.domains) {
    if (!d.destroyed) out.emplace_back(Final(d, AcctFinalReason::kShutdown, realtime_ns, names));
  }
  return out;
}

}  // namespace xenbaked::publish
