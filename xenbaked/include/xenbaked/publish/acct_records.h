// xenbaked/publish/acct_records.h — accounting log records from the daemon's windows: per closed
// window what each domain and CPU did in it, and one final record per domain at its end.
//
// The windows come from WindowHistory (xenbaked/windows.h), which already holds each window as
// the difference of two engine snapshots; the log takes the shortest configured length (1 s).
//
//   engine final callback:  log.Append(FinalRecord(d, AcctFinalReason::kDestroyed, wall, names));
//   at start:               config.run = RunStartRecord(wall);   // AccountingLogConfig
//   each window closed:     for (auto& r : IntervalRecords(window, wall, names, log.stats(),
//                                                          health))
//                             log.Append(r);
//   at shutdown:            for (auto& r : ShutdownRecords(totals, wall, names)) log.Append(r);
//                           log.Append(RunEndRecord(*log.run(), health, totals, wall,
//                           log.stats()));
#pragma once

#include <cstdint>
#include <vector>

#include "tracefmt/acctlog.h"
#include "xenbaked/accounting.h"
#include "xenbaked/health.h"
#include "xenbaked/publish/accounting_log.h"
#include "xenbaked/publish/publish_view.h"
#include "xenbaked/windows.h"

namespace xenbaked::publish {

// One record per domain alive in the window (interval figures; slice min/max are 0, as windows
// cannot difference them), one per CPU and one for the host, which also carries the log's own
// error and drop counts and the daemon's loss since its start (`health`, as published with the
// window: loss before start apart).
std::vector<tracefmt::AcctRecord> IntervalRecords(const Window& window, uint64_t realtime_ns,
                                                  const DomainNames& names,
                                                  const AccountingLogStats& log_stats,
                                                  const DaemonHealth& health = {},
                                                  const ReconcileReport* reconcile = nullptr);
// This run's identity: a random id, its start on the wall clock, the process id.
tracefmt::AcctRunRecord RunStartRecord(uint64_t start_realtime_ns);
// The run's end, with the daemon's final figures (after the last drain).
tracefmt::AcctRunRecord RunEndRecord(const tracefmt::AcctRunRecord& run, const DaemonHealth& health,
                                     const AccountingSnapshot& totals, uint64_t realtime_ns,
                                     const AccountingLogStats& log_stats);
// A domain's final record: totals from first to last seen.
tracefmt::AcctDomainRecord FinalRecord(const DomainTotals& domain, tracefmt::AcctFinalReason reason,
                                       uint64_t realtime_ns, const DomainNames& names);
// Final records (kShutdown) for every domain of `totals` not yet destroyed, for a clean exit.
std::vector<tracefmt::AcctRecord> ShutdownRecords(const AccountingSnapshot& totals,
                                                  uint64_t realtime_ns, const DomainNames& names);

}  // namespace xenbaked::publish
