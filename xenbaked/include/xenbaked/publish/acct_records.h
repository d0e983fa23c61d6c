// xenbaked/publish/acct_records.h — accounting log records from the daemon's windows: per closed
// window what each domain and CPU did in it, and one final record per domain at its end.
//
// The windows come from WindowHistory (xenbaked/windows.h), which already holds each window as
// the difference of two engine snapshots; the log takes the shortest configured length (1 s).
//
//   engine final callback:  log.Append(FinalRecord(d, AcctFinalReason::kDestroyed, wall, names));
//   each window closed:     for (auto& r : IntervalRecords(window, wall, names, log.stats()))
//                             log.Append(r);
//   at shutdown:            for (auto& r : ShutdownRecords(totals, wall, names)) log.Append(r);
#pragma once

#include <cstdint>
#include <vector>

#include "tracefmt/acctlog.h"
#include "xenbaked/accounting.h"
#include "xenbaked/publish/accounting_log.h"
#include "xenbaked/publish/publish_view.h"
#include "xenbaked/windows.h"

namespace xenbaked::publish {

// One record per domain alive in the window (interval figures; slice min/max are 0, as windows
// cannot difference them), one per CPU and one for the host, which also carries the log's own
// error and drop counts.
std::vector<tracefmt::AcctRecord> IntervalRecords(const Window& window, uint64_t realtime_ns,
                                                  const DomainNames& names,
                                                  const AccountingLogStats& log_stats);
// A domain's final record: totals from first to last seen.
tracefmt::AcctDomainRecord FinalRecord(const DomainTotals& domain, tracefmt::AcctFinalReason reason,
                                       uint64_t realtime_ns, const DomainNames& names);
// Final records (kShutdown) for every domain of `totals` not yet destroyed, for a clean exit.
std::vector<tracefmt::AcctRecord> ShutdownRecords(const AccountingSnapshot& totals,
                                                  uint64_t realtime_ns, const DomainNames& names);

}  // namespace xenbaked::publish
