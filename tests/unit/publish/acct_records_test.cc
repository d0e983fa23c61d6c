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
  EXPECT_EQ(gone.slice_max_ns, 30'000'000u);
  auto at_exit = ShutdownRecords(host.totals, 8, host.names);
  ASSERT_EQ(at_exit.size(), 2u);  // the destroyed domain already had its final record
  EXPECT_EQ(std::get<AcctDomainRecord>(at_exit[1]).final_reason, AcctFinalReason::kShutdown);
}

}  // namespace
}  // namespace xenbaked::publish
