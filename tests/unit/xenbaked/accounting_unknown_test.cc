// Unknown time and published totals under loss, contradictions and time going backwards: the
// probes of what the trace cannot vouch for. Every expectation is a TSC difference at 1 GHz.
//
// The rule checked throughout: each vCPU's time since its origin splits exactly into running,
// runnable, blocked, offline and unknown (once the input has ended), the true time in each state
// lies within [reported, reported + unknown], and no published total ever goes down.
#include <gtest/gtest.h>

#include <vector>

#include "engine_test_fixture.h"
#include "xenbaked/accounting.h"

namespace xenbaked {
namespace {

using namespace xenbaked::testing;  // NOLINT: test helpers

class AccountingUnknownTest : public EngineTest {
 protected:
  // A record that shows the CPU was tracing (nothing lost up to it) and changes nothing.
  void Tick(uint32_t cpu, uint64_t tsc) { Add(cpu, MakeRecord(ev::kCsched2Tick, {}, tsc)); }
  static const VcpuTotals& Vcpu(const AccountingSnapshot& s, uint32_t domid, uint32_t vcpu) {
    for (const DomainTotals& d : s.domains)
      for (const VcpuTotals& v : d.vcpus)
        if (d.domid == domid && v.vcpu == vcpu) return v;
    ADD_FAILURE() << "domain " << domid << " vCPU " << vcpu << " missing";
    static const VcpuTotals kNone;
    return kNone;
  }
  static uint64_t Sum(const VcpuTotals& v) {
    return v.running_ns + v.runnable_ns + v.blocked_ns + v.offline_ns + v.unknown_ns;
  }
};

TEST_F(AccountingUnknownTest, AGapOnAnotherCpuPutsItsSpanInUnknownNotInTheOldState) {
  Change(0, 2, 0, kWait, kRun, 0);  // dom 2 runs on CPU 0
  Change(1, 1, 0, kWait, kRun, 0);
  Change(1, 1, 0, kRun, kBlk, 100);  // dom 1 blocks on CPU 1
  // CPU 0 lost records from 200 to 900: dom 1's wake may have been among them (a wake is
  // written on the waker's CPU), so dom 1 may not have been blocked then.
  Add(0, LostRecords(50, 2, 0, /*first_tsc=*/200, /*tsc=*/900));
  Change(1, 1, 0, kBlk, kWait, 1000);  // after the gap, still blocked until here
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(1000);

  const VcpuTotals& blocked = Vcpu(s, 1, 0);
  EXPECT_EQ(blocked.blocked_ns, 100u + 100u) << "before the gap and after it; not through it";
  EXPECT_EQ(blocked.unknown_ns, 700u);
  EXPECT_EQ(blocked.running_ns, 100u);
  EXPECT_EQ(Sum(blocked), 1000u);
  const VcpuTotals& running = Vcpu(s, 2, 0);
  EXPECT_EQ(running.running_ns, 200u + 100u) << "up to the first lost TSC, and from the report";
  EXPECT_EQ(running.unknown_ns, 700u);
  EXPECT_EQ(Sum(running), 1000u);
}

// Xen writes the loss report only when space frees on the lossy CPU, so in TSC order it comes
// after what other CPUs wrote during the gap: here CPU 1 closes dom 1's runnable interval at 700,
// inside CPU 0's gap (200–900), before the report. The gap may have hidden a dispatch of dom 1 on
// CPU 0 and its switch-out (both written there), so the part of the closed interval it covers is
// unknown, though the record at 700 agreed with the state held.
TEST_F(AccountingUnknownTest, ALateLossReportTakesBackTheClosedIntervalItCovers) {
  Change(0, 2, 0, kWait, kRun, 0);
  Change(1, 1, 0, kWait, kRun, 0);
  Change(1, 1, 0, kRun, kWait, 100);
  Change(1, 1, 0, kWait, kRun, 700);
  const AccountingSnapshot before = engine.Snapshot(700);
  EXPECT_EQ(Vcpu(before, 1, 0).runnable_ns, 0u) << "CPU 0 not heard from since 0";
  Add(0, LostRecords(50, 2, 0, /*first_tsc=*/200, /*tsc=*/900));
  Change(1, 1, 0, kRun, kBlk, 1000);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(1000);
  const VcpuTotals& v = Vcpu(s, 1, 0);
  EXPECT_EQ(v.runnable_ns, 100u) << "up to the first lost TSC";
  EXPECT_EQ(v.unknown_ns, 500u);
  EXPECT_EQ(v.running_ns, 100u + 300u);
  EXPECT_EQ(Sum(v), 1000u);
}

// After a reported gap the next record's old state is read back to the gap's end; a second gap,
// on another CPU and reported later, can hide a change within that stretch (here the wake, at
// 700 on CPU 1), so the whole stretch read back is unknown, not only the part the second gap
// covers.
TEST_F(AccountingUnknownTest, AStateReadBackFromARecordIsTakenBackWholeByALaterReport) {
  Change(1, 3, 0, kWait, kRun, 0);
  Change(0, 1, 0, kWait, kRun, 0);
  Change(0, 1, 0, kRun, kBlk, 100);
  Add(0, LostRecords(10, 2, 0, /*first_tsc=*/200, /*tsc=*/400));
  Tick(1, 450);
  Change(0, 1, 0, kWait, kRun, 800);
  Add(1, LostRecords(10, 3, 0, /*first_tsc=*/500, /*tsc=*/1000));
  Change(0, 1, 0, kRun, kBlk, 1100);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(1100);
  const VcpuTotals& v = Vcpu(s, 1, 0);
  EXPECT_EQ(v.blocked_ns, 100u);
  EXPECT_EQ(v.runnable_ns, 0u) << "it was blocked until 700: runnable from 400 was a guess";
  EXPECT_EQ(v.unknown_ns, 200u + 400u);
  EXPECT_EQ(v.running_ns, 100u + 300u);
  EXPECT_EQ(Sum(v), 1100u);
}

TEST_F(AccountingUnknownTest, AVcpuRunningOnAnotherCpuIsNotTouchedByTheGap) {
  Change(1, 1, 0, kWait, kRun, 0);
  Change(0, 2, 0, kWait, kRun, 0);
  Add(0, LostRecords(50, 2, 0, /*first_tsc=*/200, /*tsc=*/900));
  Change(1, 1, 0, kRun, kBlk, 1000);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(1000);
  // Its switch-out would have been written on its own CPU, which lost nothing.
  EXPECT_EQ(Vcpu(s, 1, 0).running_ns, 1000u);
  EXPECT_EQ(Vcpu(s, 1, 0).unknown_ns, 0u);
}

TEST_F(AccountingUnknownTest, AfterTheGapTheNextRecordsOldStateHoldsFromTheGapsEnd) {
  Change(1, 1, 0, kWait, kRun, 0);
  Change(1, 1, 0, kRun, kBlk, 100);
  Change(0, 2, 0, kWait, kRun, 100);
  Add(0, LostRecords(50, 2, 0, /*first_tsc=*/200, /*tsc=*/900));
  // Woken in the gap (the wake was lost), dispatched here after it: runnable since the gap's
  // end at the latest, and unknown in it.
  Change(1, 1, 0, kWait, kRun, 1000);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(1000);
  const VcpuTotals& v = Vcpu(s, 1, 0);
  EXPECT_EQ(v.blocked_ns, 100u);
  EXPECT_EQ(v.unknown_ns, 700u);
  EXPECT_EQ(v.runnable_ns, 100u);
  EXPECT_EQ(Sum(v), 1000u);
}

TEST_F(AccountingUnknownTest, TheTimeBeforeAVcpusFirstRecordIsUnknown) {
  Tick(0, 0);
  Change(0, 3, 0, kRun, kBlk, 500);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(800);
  EXPECT_EQ(Vcpu(s, 3, 0).unknown_ns, 500u);
  EXPECT_EQ(Vcpu(s, 3, 0).blocked_ns, 300u);
}

TEST_F(AccountingUnknownTest, ADomainsVcpusStartAtItsCreation) {
  Tick(0, 0);
  Add(0, MakeRecord(ev::kDom0DomAdd, {5}, 400));
  Change(0, 5, 0, kOff, kWait, 600);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(1000);
  EXPECT_EQ(Vcpu(s, 5, 0).unknown_ns, 200u);
  EXPECT_EQ(Vcpu(s, 5, 0).runnable_ns, 400u);
}

TEST_F(AccountingUnknownTest, TimeGoingBackwardsIsCountedOnce) {
  Change(0, 1, 0, kWait, kRun, 1000);
  Tick(0, 1500);
  // A record from another CPU, older than the interval it would close (beyond any reordering).
  Change(1, 1, 0, kRun, kBlk, 900);
  Change(0, 1, 0, kBlk, kWait, 2000);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(2000);
  const VcpuTotals& v = Vcpu(s, 1, 0);
  EXPECT_EQ(s.anomaly_kinds.time_backwards, 1u);
  EXPECT_LE(Sum(v), 2000u - 900u) << "no instant is counted in two states";
  EXPECT_EQ(Sum(v), 1000u) << "the vCPU's time since the engine's first record, once";
}

TEST_F(AccountingUnknownTest, ACountedRunningTotalNeverGoesDownWhenALossIsReportedLater) {
  Change(0, 1, 0, kWait, kRun, 1000);
  Change(1, 2, 0, kWait, kRun, 1000);
  Tick(0, 2900);
  Tick(1, 3500);
  const AccountingSnapshot before = engine.Snapshot(3500);
  // CPU 0 lost records from 3000 on: dom 1 may have stopped running at 3000.
  Add(0, LostRecords(10, 1, 0, /*first_tsc=*/3000, /*tsc=*/4000));
  Tick(1, 4000);
  const AccountingSnapshot after = engine.Snapshot(4000);
  const VcpuTotals& b = Vcpu(before, 1, 0);
  const VcpuTotals& a = Vcpu(after, 1, 0);
  EXPECT_GE(a.running_ns, b.running_ns);
  EXPECT_GE(a.unknown_ns, b.unknown_ns);
  EXPECT_EQ(a.running_ns, 2000u) << "up to the first lost TSC";
  EXPECT_EQ(a.unknown_ns, 1000u);
  // What the first snapshot published was vouched for: CPU 0 had delivered records up to 2900.
  EXPECT_EQ(b.running_ns, 1900u);
}

TEST_F(AccountingUnknownTest, APublishedTotalSurvivesALaterContradiction) {
  Change(0, 1, 0, kWait, kRun, 1000);
  Tick(0, 1500);
  const AccountingSnapshot before = engine.Snapshot(1500);
  EXPECT_EQ(Vcpu(before, 1, 0).running_ns, 500u);
  // The chain breaks: the record says runnable, we held running.
  Change(0, 1, 0, kWait, kBlk, 2000);
  // Held back for the reorder tolerance (10 µs), then settled: no record came to explain it.
  Tick(0, 20'000);
  const AccountingSnapshot after = engine.Snapshot(20'000);
  EXPECT_EQ(Vcpu(after, 1, 0).running_ns, 500u) << "published, not taken back";
  EXPECT_EQ(Vcpu(after, 1, 0).unknown_ns, 500u) << "the rest of the contradicted interval";
}

TEST_F(AccountingUnknownTest, OpenIntervalsArePublishedOnlyAsFarAsTheTraceVouches) {
  Change(0, 1, 0, kWait, kRun, 100);
  Change(1, 2, 0, kRun, kBlk, 100);
  Tick(1, 300);
  const AccountingSnapshot s = engine.Snapshot(400);
  // CPU 0 was last heard from at 100: a loss there could have begun right after.
  EXPECT_EQ(Vcpu(s, 1, 0).running_ns, 0u);
  // A blocked vCPU's next change may be written on any CPU: vouched up to the oldest last
  // record over the CPUs.
  EXPECT_EQ(Vcpu(s, 2, 0).blocked_ns, 0u);
  Tick(0, 350);
  const AccountingSnapshot later = engine.Snapshot(400);
  EXPECT_EQ(Vcpu(later, 1, 0).running_ns, 250u);
  EXPECT_EQ(Vcpu(later, 2, 0).blocked_ns, 200u);
  engine.EndOfInput();
  const AccountingSnapshot end = engine.Snapshot(400);
  EXPECT_EQ(Vcpu(end, 1, 0).running_ns, 300u) << "nothing can come after the end";
  EXPECT_EQ(Vcpu(end, 2, 0).blocked_ns, 300u);
}

// A crafted trace naming the largest vCPU ids of many domains: memory follows the records given
// (was: a table up to the largest id, 8,192 states per domain: 236 MB from a 3.2 KB trace).
TEST_F(AccountingUnknownTest, MemoryGrowsWithTheRecordsNotWithTheLargestIdNamed) {
  constexpr uint32_t kDomains = 200;
  uint64_t records = 0;
  for (uint32_t dom = 0; dom < kDomains; ++dom) {
    for (uint32_t vcpu : {kMaxVcpuId, kMaxVcpuId - 1000, 3u, 0u, 1u, 2u}) {
      Change(dom % 4, dom, vcpu, kWait, kRun, 100 + records);
      ++records;
    }
  }
  const EngineStateSizes sizes = engine.StateSizes();
  EXPECT_LE(sizes.vcpu_states, 4 * records);
  // The domid table and CPU states are fixed; beyond them, about a kilobyte per record.
  EXPECT_LE(sizes.bytes, 200'000 + 1'500 * records);
  // Every vCPU named is still accounted, in id order.
  const AccountingSnapshot s = engine.Snapshot(100 + records);
  ASSERT_EQ(s.domains.size(), kDomains);
  const DomainTotals& d = s.domains[7];
  std::vector<uint32_t> seen;
  for (const VcpuTotals& v : d.vcpus)
    if (v.seen) seen.push_back(v.vcpu);
  EXPECT_EQ(seen, (std::vector<uint32_t>{0, 1, 2, 3, kMaxVcpuId - 1000, kMaxVcpuId}));
}

// The dense table grows past ids held in the map: they move in, keeping their time.
TEST_F(AccountingUnknownTest, AVcpuKeepsItsTimeWhenItsIdMovesIntoTheTable) {
  Change(0, 1, 5, kWait, kRun, 100);
  Change(0, 1, 5, kRun, kBlk, 300);
  for (uint32_t vcpu = 0; vcpu < 5; ++vcpu) Change(1, 1, vcpu, kWait, kBlk, 400 + vcpu);
  Change(0, 1, 5, kBlk, kWait, 1000);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(1000);
  EXPECT_EQ(Vcpu(s, 1, 5).running_ns, 200u);
  EXPECT_EQ(Vcpu(s, 1, 5).blocked_ns, 700u);
}

// A CPU runs one vCPU at a time: a dispatch ends the running time of the one held running there
// (its switch-out record lost in the gap the report closed).
TEST_F(AccountingUnknownTest, ADispatchEndsTheRunningTimeOfTheVcpuHeldRunningOnThatCpu) {
  Change(0, 1, 4, kWait, kRun, 0);
  Add(0, LostRecords(5, 1, 4, /*first_tsc=*/1000, /*tsc=*/2000));  // names 1.4 current
  Change(0, 1, 1, kWait, kRun, 2000);  // 1.4's switch-out, at 2000 too, was lost
  Tick(0, 4000);
  Tick(1, 4000);
  EXPECT_EQ(Vcpu(engine.Snapshot(4000), 1, 4).running_ns, 1000u) << "not published as running";
  Change(1, 1, 4, kWait, kRun, 5000);  // 1.4 was runnable by then (contradiction, settled)
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(6000);
  EXPECT_EQ(Vcpu(s, 1, 4).running_ns, 1000u + 1000u) << "up to the gap; from 5000 on CPU 1";
  EXPECT_EQ(Vcpu(s, 1, 4).unknown_ns, 1000u + 3000u);
  EXPECT_EQ(Sum(Vcpu(s, 1, 4)), 6000u);
}

// A wake on CPU 0 and the dispatch it caused on CPU 1, out of TSC order by 5 ticks (skew): put in
// order, not read as contradictions (was: three mismatches, 4,000 ticks of running wiped out).
TEST_F(AccountingUnknownTest, AFiveTickReorderBetweenCpusIsPutInOrder) {
  Change(1, 1, 0, kWait, kRun, 0);
  Change(1, 1, 0, kRun, kBlk, 1000);
  Change(1, 1, 0, kWait, kRun, 5000);  // the dispatch, stamped before...
  Change(0, 1, 0, kBlk, kWait, 5005);  // ...the wake that caused it
  Change(1, 1, 0, kRun, kBlk, 9000);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(9000);
  const VcpuTotals& v = Vcpu(s, 1, 0);
  EXPECT_EQ(s.anomalies, 0u);
  EXPECT_EQ(v.blocked_ns, 4000u);
  EXPECT_EQ(v.running_ns, 1000u + 4000u);
  EXPECT_EQ(v.unknown_ns, 0u);
  EXPECT_EQ(Sum(v), 9000u);
}

// Beyond the tolerance it is a contradiction, and costs at most its interval.
TEST_F(AccountingUnknownTest, AContradictionBeyondTheToleranceCostsOnlyItsInterval) {
  Change(1, 1, 0, kWait, kRun, 0);
  Change(1, 1, 0, kRun, kBlk, 1000);
  Change(1, 1, 0, kWait, kRun, 5000);
  Change(0, 1, 0, kBlk, kWait, 5000 + 20'000);  // 20 µs late: no reordering explains it
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(30'000);
  const VcpuTotals& v = Vcpu(s, 1, 0);
  EXPECT_EQ(v.running_ns, 1000u) << "the dispatch's interval, contradicted by the wake, is unknown";
  EXPECT_EQ(v.blocked_ns, 0u);
  EXPECT_EQ(v.unknown_ns, 4000u + 20'000u);
  EXPECT_EQ(v.runnable_ns, 5000u);
  EXPECT_EQ(Sum(v), 30'000u);
  EXPECT_EQ(s.anomaly_kinds.runstate_mismatch, 2u);
}

// Xen traces DOM0_DOM_REM at destruction and SCHED_DOM_REM an RCU grace period later; the id may
// be reused in between.
TEST_F(AccountingUnknownTest, ALateSchedDomRemDoesNotEndTheIdsNewDomain) {
  std::vector<DomainTotals> finals;
  engine.OnFinal([&](const DomainTotals& t) { finals.push_back(t); });
  Add(0, MakeRecord(ev::kDom0DomAdd, {9}, 10));
  Change(0, 9, 0, kOff, kWait, 100);
  Add(0, MakeRecord(ev::kDom0DomRem, {9}, 200));
  // The dying domain's last record, in the grace period: no phantom incarnation.
  Change(1, 9, 0, kWait, kOff, 210);
  Add(0, MakeRecord(ev::kDom0DomAdd, {9}, 300));  // the id reused
  Change(0, 9, 0, kOff, kWait, 350);
  Add(1, MakeRecord(ev::kDomRem, {9}, 400));  // the first domain's SCHED_DOM_REM, late
  Change(0, 9, 0, kWait, kRun, 500);
  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(600);

  ASSERT_EQ(finals.size(), 1u) << "one domain ended";
  EXPECT_EQ(finals[0].runnable_ns, 100u);
  const VcpuTotals& reborn = Vcpu(s, 9, 0);
  EXPECT_EQ(reborn.runnable_ns, 150u) << "the new domain lives on past the late REM";
  EXPECT_EQ(reborn.running_ns, 100u);
  EXPECT_EQ(reborn.unknown_ns, 50u) << "from its ADD to its first record";
  EXPECT_EQ(s.domains.size(), 1u);
  EXPECT_FALSE(s.domains[0].destroyed);
}

}  // namespace
}  // namespace xenbaked
