// Accounting log records made from the daemon's windows and final totals.
#include "xenbaked/publish/acct_records.h"

#include <gtest/gtest.h>

#include "fake_host.h"

namespace xenbaked::publish {
namespace {

using tracefmt::AcctCpuRecord;
using tracefmt::AcctDomainRecord;
using tracefmt::AcctFinalReason;
using tracefmt::AcctHostRecord;

TEST(AcctRecords, AWindowBecomesOneRecordPerDomainAndCpuAndOneForTheHost) {
  testing::FakeHost host;
  host.Advance(1);
  host.Advance(2);
  const Window& window = host.history.windows(0).back();
  AccountingLogStats log_stats;
  log_stats.write_errors = 2;
  log_stats.dropped_records = 1;
  auto records = IntervalRecords(window, /*realtime_ns=*/99, host.names, log_stats);
  ASSERT_EQ(records.size(), 3u + 2u + 1u);
  const auto& d1 = std::get<AcctDomainRecord>(records[1]);
  EXPECT_EQ(d1.domid, 1u);
  EXPECT_EQ(d1.name, "guest1");
  EXPECT_FALSE(d1.is_final());
  EXPECT_EQ(d1.window_start_ns, 1'000'000'000u);
  EXPECT_EQ(d1.window_end_ns, 2'000'000'000u);
  EXPECT_EQ(d1.realtime_end_ns, 99u);
  EXPECT_EQ(d1.running_ns, 1'000'000u);
  EXPECT_EQ(d1.unknown_ns, 125'000u);  // the window's unknown time, not the total
  EXPECT_EQ(d1.dispatches, 1u);
  const auto& cpu = std::get<AcctCpuRecord>(records[4]);
  EXPECT_EQ(cpu.cpu, 1u);
  EXPECT_EQ(cpu.elapsed_ns, 1'000'000'000u);
  EXPECT_EQ(cpu.capture_ratio_ppm, 999'000u);
  const auto& h = std::get<AcctHostRecord>(records[5]);
  EXPECT_EQ(h.live_domains, 3u);
  EXPECT_EQ(h.lost_records, 1u);
  EXPECT_EQ(h.log_write_errors, 2u);
  EXPECT_EQ(h.log_dropped_records, 1u);
}

TEST(AcctRecords, FinalRecordsCarryTotalsSinceFirstSeen) {
  testing::FakeHost host;
  host.Advance(4);
  host.totals.domains[2].destroyed = true;
  AcctDomainRecord gone =
      FinalRecord(host.totals.domains[2], AcctFinalReason::kDestroyed, 7, host.names);
  EXPECT_TRUE(gone.is_final());
  EXPECT_EQ(gone.running_ns, 8'000'000u);
  EXPECT_EQ(gone.unknown_ns, 500'000u);
  EXPECT_EQ(gone.slice_max_ns, 30'000'000u);
  auto at_exit = ShutdownRecords(host.totals, 8, host.names);
  ASSERT_EQ(at_exit.size(), 2u);  // the destroyed domain already had its final record
  EXPECT_EQ(std::get<AcctDomainRecord>(at_exit[1]).final_reason, AcctFinalReason::kShutdown);
}

// The host record carries the daemon's loss figures as its health has them: loss before start
// (e.g. buffers full since boot) apart, both cumulative since the run began.
TEST(AcctRecords, TheHostRecordCarriesTheDaemonsLossBeforeStartAndDuringTheRun) {
  testing::FakeHost host;
  host.Advance(1);
  host.Advance(2);
  DaemonHealth health;
  health.lost_records = 227'404 + 48'304;
  health.lost_records_at_start = 227'404;
  auto records = IntervalRecords(host.history.windows(0).back(), 99, host.names, {}, health);
  const auto& h = std::get<AcctHostRecord>(records.back());
  EXPECT_EQ(h.run_lost_records, 227'404u + 48'304u);
  EXPECT_EQ(h.run_lost_records_at_start, 227'404u);
}

// Interval records carry the newest reconciliation's totals of the same incarnation, 0 for a
// domain not compared; the host record the host's.
TEST(AcctRecords, IntervalRecordsCarryTheNewestReconciliation) {
  testing::FakeHost host;
  host.Advance(1);
  host.Advance(2);
  const Window& window = host.history.windows(0).back();
  ReconcileReport r;
  for (const DomainTotals& d : window.delta.domains) {
    if (d.domid != 1) continue;
    DomainReconcile& rec = r.domains.emplace_back();
    rec.domid = 1;
    rec.instance = d.instance;
    rec.trace_running_total_ns = 5;
    rec.xen_cpu_total_ns = 7;
  }
  ASSERT_EQ(r.domains.size(), 1u);
  r.host.trace_running_total_ns = 50;
  r.host.xen_cpu_total_ns = 70;
  r.unexplained_periods = 2;
  auto records = IntervalRecords(window, 99, host.names, {}, {}, &r);
  size_t domains = 0;
  for (const tracefmt::AcctRecord& rec : records) {
    const auto* d = std::get_if<AcctDomainRecord>(&rec);
    if (d == nullptr) continue;
    ++domains;
    EXPECT_EQ(d->reconcile_trace_running_ns, d->domid == 1 ? 5u : 0u) << d->domid;
    EXPECT_EQ(d->reconcile_xen_cpu_ns, d->domid == 1 ? 7u : 0u) << d->domid;
  }
  EXPECT_EQ(domains, 3u);
  const auto& h = std::get<AcctHostRecord>(records.back());
  EXPECT_EQ(h.reconcile_trace_running_ns, 50u);
  EXPECT_EQ(h.reconcile_xen_cpu_ns, 70u);
  EXPECT_EQ(h.reconcile_unexplained_periods, 2u);
}

TEST(AcctRecords, ARunEndsWithTheDaemonsFinalFigures) {
  const tracefmt::AcctRunRecord start = RunStartRecord(1'000);
  EXPECT_EQ(start.phase, tracefmt::AcctRunPhase::kStart);
  EXPECT_EQ(start.start_realtime_ns, 1'000u);
  EXPECT_NE(start.run_id, RunStartRecord(1'000).run_id);  // two runs never share an id
  DaemonHealth health;
  health.records = 500;
  health.lost_records = 30;
  health.lost_records_at_start = 20;
  AccountingSnapshot totals;
  totals.at_ns = 5'500'000'000;
  AccountingLogStats stats;
  stats.write_errors = 3;
  const tracefmt::AcctRunRecord end = RunEndRecord(start, health, totals, 9'000, stats);
  EXPECT_EQ(end.phase, tracefmt::AcctRunPhase::kEnd);
  EXPECT_EQ(end.run_id, start.run_id);
  EXPECT_EQ(end.start_realtime_ns, 1'000u);
  EXPECT_EQ(end.realtime_ns, 9'000u);
  EXPECT_EQ(end.engine_ns, 5'500'000'000u);
  EXPECT_EQ(end.records, 500u);
  EXPECT_EQ(end.lost_records, 30u);
  EXPECT_EQ(end.lost_records_at_start, 20u);
  EXPECT_EQ(end.log_write_errors, 3u);
}

}  // namespace
}  // namespace xenbaked::publish
