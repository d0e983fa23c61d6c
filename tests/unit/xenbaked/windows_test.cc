// WindowHistory and WindowedAccounting: windows are exact differences of snapshots taken on
// their boundaries, they sum to the totals, and the history stays bounded.
#include "xenbaked/windows.h"

#include <gtest/gtest.h>

#include <vector>

#include "accounting_test_util.h"

namespace xenbaked {
namespace {

using namespace xenbaked::testing;  // NOLINT: test helpers

tracefmt::MergedRecord Merged(uint32_t cpu, const tracefmt::Record& rec) {
  tracefmt::MergedRecord m;
  m.cpu = cpu;
  m.tsc = rec.tsc;
  m.rec = rec;
  return m;
}

const DomainTotals* Find(const AccountingSnapshot& s, uint32_t domid) {
  for (const DomainTotals& d : s.domains)
    if (d.domid == domid) return &d;
  return nullptr;
}

// A vCPU that runs 300 ns, blocks 400 ns, waits 300 ns, over and over, on CPU 0, with the idle
// vCPU filling the CPU while it does not run; at 1 GHz.
std::vector<tracefmt::MergedRecord> PeriodicWorkload(uint64_t periods) {
  std::vector<tracefmt::MergedRecord> out;
  const uint32_t idle = ev::kIdleDomain;
  uint64_t t = 0;
  out.push_back(Merged(0, RunstateChange(idle, 0, kWait, kRun, t)));
  out.push_back(Merged(0, RunstateChange(1, 0, kBlk, kWait, t)));
  for (uint64_t p = 0; p < periods; ++p) {
    out.push_back(Merged(0, RunstateChange(idle, 0, kRun, kWait, t + 300)));
    out.push_back(Merged(0, RunstateChange(1, 0, kWait, kRun, t + 300)));
    out.push_back(Merged(0, RunstateChange(1, 0, kRun, kBlk, t + 600)));
    out.push_back(Merged(0, RunstateChange(idle, 0, kWait, kRun, t + 600)));
    out.push_back(Merged(0, RunstateChange(1, 0, kBlk, kWait, t + 1000)));
    t += 1000;
  }
  return out;
}

TEST(WindowsTest, WindowsEndOnBoundariesAndSumToTotals) {
  AccountingEngine engine({.cpu_khz = kOneGhzKhz});
  WindowHistory history({.lengths_ns = {2'000, 5'000}, .history = 100});
  WindowedAccounting acct(engine, history);
  for (const tracefmt::MergedRecord& m : PeriodicWorkload(20)) acct.Add(m);
  acct.Flush();

  const AccountingSnapshot& totals = history.totals();
  for (size_t li = 0; li < history.length_count(); ++li) {
    const uint64_t length = history.length_ns(li);
    uint64_t running = 0, runnable = 0, blocked = 0, dispatches = 0, accounted = 0, elapsed = 0;
    uint64_t expected_index = 0;
    uint64_t last_end = 0;
    for (const Window& w : history.windows(li)) {
      EXPECT_EQ(w.index, expected_index++);
      EXPECT_EQ(w.end_ns, (w.index + 1) * length) << "a window ends exactly on its boundary";
      const DomainTotals* d = Find(w.delta, 1);
      ASSERT_NE(d, nullptr);
      running += d->running_ns;
      runnable += d->runnable_ns;
      blocked += d->blocked_ns;
      dispatches += d->dispatches;
      accounted += w.delta.cpus[0].accounted_ns;
      elapsed += w.delta.cpus[0].elapsed_ns;
      EXPECT_DOUBLE_EQ(w.delta.cpus[0].capture_ratio(), 1.0);
      last_end = w.end_ns;
    }
    // The closed windows plus the open, partial one are exactly the totals.
    const AccountingSnapshot open_part =
        DiffSnapshots(totals, engine.Snapshot(engine.NsToTsc(last_end)));
    const DomainTotals* d = Find(totals, 1);
    EXPECT_EQ(running + Find(open_part, 1)->running_ns, d->running_ns) << "length " << length;
    EXPECT_EQ(runnable + Find(open_part, 1)->runnable_ns, d->runnable_ns);
    EXPECT_EQ(blocked + Find(open_part, 1)->blocked_ns, d->blocked_ns);
    EXPECT_EQ(dispatches + Find(open_part, 1)->dispatches, d->dispatches);
    EXPECT_EQ(accounted + open_part.cpus[0].accounted_ns, totals.cpus[0].accounted_ns);
    EXPECT_EQ(elapsed + open_part.cpus[0].elapsed_ns, totals.cpus[0].elapsed_ns);
  }
  // Each 5 µs window holds five whole periods: 1.5 µs running, 2 µs blocked, 1.5 µs waiting.
  const Window& w = history.windows(1).at(1);
  EXPECT_EQ(Find(w.delta, 1)->running_ns, 1500u);
  EXPECT_EQ(Find(w.delta, 1)->blocked_ns, 2000u);
  EXPECT_EQ(Find(w.delta, 1)->runnable_ns, 1500u);
  EXPECT_EQ(Find(w.delta, 1)->dispatches, 5u);
  EXPECT_EQ(Find(w.delta, ev::kIdleDomain)->running_ns, 3500u);
}

TEST(WindowsTest, HistoryIsBounded) {
  AccountingEngine engine({.cpu_khz = kOneGhzKhz});
  WindowHistory history({.lengths_ns = {1'000}, .history = 3});
  WindowedAccounting acct(engine, history);
  for (const tracefmt::MergedRecord& m : PeriodicWorkload(50)) acct.Add(m);
  acct.Flush();
  ASSERT_EQ(history.windows(0).size(), 3u);
  // The newest closed windows are kept: the last record, at 50 µs, closes [49 µs, 50 µs).
  EXPECT_EQ(history.windows(0).back().index, 49u);
  const size_t bytes = history.ApproxBytes();
  for (const tracefmt::MergedRecord& m : PeriodicWorkload(50)) {
    tracefmt::MergedRecord later = m;
    later.tsc += 50'000;
    later.rec.tsc += 50'000;
    acct.Add(later);
  }
  acct.Flush();
  EXPECT_EQ(history.windows(0).size(), 3u);
  EXPECT_LE(history.ApproxBytes(), bytes + 64) << "memory does not grow with run time";
}

TEST(WindowsTest, DomainDestroyedAndItsIdReusedInOneWindowIsCountedWhole) {
  AccountingEngine engine({.cpu_khz = kOneGhzKhz});
  WindowHistory history({.lengths_ns = {10'000}, .history = 4});
  std::vector<DomainTotals> finals;
  WindowedAccounting acct(engine, history, [&](const DomainTotals& f) { finals.push_back(f); });
  const uint32_t idle = ev::kIdleDomain;
  acct.Add(Merged(0, RunstateChange(idle, 0, kWait, kRun, 0)));
  acct.Add(Merged(0, MakeRecord(ev::kDomAdd, {5}, 12'000)));
  acct.Add(Merged(0, RunstateChange(5, 0, kWait, kRun, 12'000)));
  acct.Add(Merged(0, RunstateChange(5, 0, kRun, kBlk, 12'700)));
  acct.Add(Merged(0, MakeRecord(ev::kDomRem, {5}, 13'000)));
  acct.Add(Merged(0, MakeRecord(ev::kDomAdd, {5}, 14'000)));
  acct.Add(Merged(0, RunstateChange(5, 0, kWait, kRun, 14'000)));
  acct.Add(Merged(0, RunstateChange(5, 0, kRun, kBlk, 14'200)));
  acct.Add(Merged(0, RunstateChange(5, 0, kBlk, kWait, 25'000)));
  acct.Flush();

  ASSERT_EQ(finals.size(), 1u) << "the callback given to WindowedAccounting still runs";
  ASSERT_GE(history.windows(0).size(), 2u);
  const Window& w = history.windows(0)[1];  // [10 µs, 20 µs)
  uint64_t running = 0;
  int incarnations = 0;
  for (const DomainTotals& d : w.delta.domains) {
    if (d.domid != 5) continue;
    ++incarnations;
    running += d.running_ns;
  }
  EXPECT_EQ(incarnations, 2);
  EXPECT_EQ(running, 700u + 200u);
}

TEST(WindowsTest, SnapshotsFedAtArbitraryTimesCloseWindowsAtTheFirstPastTheBoundary) {
  AccountingEngine engine({.cpu_khz = kOneGhzKhz});
  WindowHistory history({.lengths_ns = {1'000}, .history = 10});
  const std::vector<tracefmt::MergedRecord> records = PeriodicWorkload(5);
  for (const tracefmt::MergedRecord& m : records) {
    engine.Add(m);
    history.Update(engine.Snapshot(engine.now_tsc()));
  }
  for (const Window& w : history.windows(0)) {
    EXPECT_GE(w.end_ns, (w.index + 1) * 1'000);
    EXPECT_GT(w.end_ns, w.start_ns);
  }
  EXPECT_FALSE(history.windows(0).empty());
  EXPECT_EQ(history.totals().records, records.size());
}

}  // namespace
}  // namespace xenbaked
