// xenbaked/publish/acct_records.h — turns the engine's running totals into accounting log
// records: per interval what each domain and CPU did inside the window, and one final record per
// domain at its end.
//
// The engine counts since start; an interval record holds the difference between this
// interval's snapshot and the previous one, per domain incarnation (domid + instance), so a
// reused id starts from zero.
//
//   AcctRecordBuilder builder;
//   engine.OnFinal([&](const DomainTotals& d) {
//     log.Append(builder.Final(d, AcctFinalReason::kDestroyed, realtime_ns(), names));
//   });
//   each interval:  for (auto& r : builder.Interval(snapshot, realtime_ns(), names, log.stats()))
//                     log.Append(r);
//   at shutdown:    for (auto& r : builder.Shutdown(snapshot, realtime_ns(), names)) log.Append(r);
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tracefmt/acctlog.h"
#include "xenbaked/accounting.h"
#include "xenbaked/publish/accounting_log.h"

namespace xenbaked::publish {

// Domain names by id, as the daemon last read them from xenstore. Untrusted text: each
// publisher sanitises what it prints.
using DomainNames = std::unordered_map<uint32_t, std::string>;

class AcctRecordBuilder {
 public:
  // One record per domain in the snapshot not yet destroyed, one per CPU and one for the host,
  // each covering the time since the previous call (or since start on the first).
  std::vector<tracefmt::AcctRecord> Interval(const AccountingSnapshot& snapshot,
                                             uint64_t realtime_ns, const DomainNames& names,
                                             const AccountingLogStats& log_stats);
  // A domain's final record: totals from first to last seen. Forgets the incarnation.
  tracefmt::AcctDomainRecord Final(const DomainTotals& domain, tracefmt::AcctFinalReason reason,
                                   uint64_t realtime_ns, const DomainNames& names);
  // Final records (kShutdown) for every live domain of the snapshot, for a clean exit.
  std::vector<tracefmt::AcctRecord> Shutdown(const AccountingSnapshot& snapshot,
                                             uint64_t realtime_ns, const DomainNames& names);

  // Totals since first seen, in record form (the final record's counters).
  static tracefmt::AcctDomainRecord Cumulative(const DomainTotals& domain);

 private:
  using Incarnation = std::pair<uint32_t, uint64_t>;  // domid, instance
  std::map<Incarnation, tracefmt::AcctDomainRecord> last_domain_;
  std::map<uint32_t, CpuTotals> last_cpu_;
  uint64_t last_at_ns_ = 0;
  uint64_t last_records_ = 0;
  uint64_t last_lost_ = 0;
  uint64_t last_anomalies_ = 0;
};

}  // namespace xenbaked::publish
