// AccountingEngine over hand-built record sequences: every expectation is a TSC difference at
// 1 GHz, so it can be checked by reading the sequence.
#include "xenbaked/accounting.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine_test_fixture.h"

namespace xenbaked {
namespace {

using namespace xenbaked::testing;  // NOLINT: test helpers

using AccountingTest = EngineTest;

TEST_F(AccountingTest, ChangesCloseTheIntervalInTheOldStateAndOpenOneInTheNew) {
  Change(0, 1, 0, kWait, kRun, 100);
  Change(0, 1, 0, kRun, kBlk, 400);
  Change(1, 1, 0, kBlk, kWait, 1000);
  Change(1, 1, 0, kWait, kRun, 1100);
  Change(1, 1, 0, kRun, kWait, 1600);
  // CPU 0 is heard from past the blocked interval CPU 1 closed: until then a loss still to be
  // reported there could hide a wake of the vCPU, and a snapshot publishes it only as far as
  // CPU 0's last record (xenbaked/docs/api.md).
  Add(0, MakeRecord(ev::kCsched2Tick, {}, 1600));

  const AccountingSnapshot s = engine.Snapshot(1600);
  const DomainTotals* d = Find(s, 1);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->vcpus.size(), 1u);
  EXPECT_EQ(d->running_ns, 300u + 500u);
  EXPECT_EQ(d->blocked_ns, 600u);
  EXPECT_EQ(d->runnable_ns, 100u);
  EXPECT_EQ(d->offline_ns, 0u);
  EXPECT_EQ(d->dispatches, 2u);
  EXPECT_EQ(d->run_slices, 2u);
  EXPECT_EQ(d->slice_min_ns, 300u);
  EXPECT_EQ(d->slice_max_ns, 500u);
  EXPECT_EQ(d->slice_sum_ns, 800u);
  EXPECT_EQ(d->vcpus[0].state, kWait);
  EXPECT_EQ(d->vcpus[0].last_cpu, 1u);
  EXPECT_EQ(s.anomalies, 0u);
  // Running time lands on the CPU it was spent on.
  EXPECT_EQ(FindCpu(s, 0)->accounted_ns, 300u);
  EXPECT_EQ(FindCpu(s, 1)->accounted_ns, 500u);
}

TEST_F(AccountingTest, FirstChangeOnlyOpens) {
  Add(0, MakeRecord(ev::kCsched2Tick, {}, 10));  // the engine's clock starts here
  Change(0, 3, 0, kRun, kBlk, 500);              // running since some time before: unknown
  Change(0, 3, 0, kBlk, kWait, 800);

  const AccountingSnapshot s = engine.Snapshot(800);
  const DomainTotals* d = Find(s, 3);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->running_ns, 0u) << "the time before the first change is not invented";
  EXPECT_EQ(d->run_slices, 0u);
  EXPECT_EQ(d->blocked_ns, 300u);
  EXPECT_EQ(d->dispatches, 0u);
}

TEST_F(AccountingTest, ContradictingOldStateCountsAnAnomalyAndResyncs) {
  Change(0, 1, 0, kWait, kRun, 100);
  Change(0, 1, 0, kRun, kBlk, 200);
  // The chain says blocked; this record claims runnable→running (a wake was lost).
  Change(0, 1, 0, kWait, kRun, 700);
  Change(0, 1, 0, kRun, kWait, 750);

  const AccountingSnapshot s = engine.Snapshot(750);
  const DomainTotals* d = Find(s, 1);
  EXPECT_EQ(s.anomalies, 1u);
  EXPECT_EQ(s.anomaly_kinds.runstate_mismatch, 1u);
  EXPECT_EQ(d->blocked_ns, 0u) << "time since the last agreed change is dropped";
  EXPECT_EQ(d->running_ns, 100u + 50u) << "the record's new state is trusted after resync";
  EXPECT_EQ(d->dispatches, 2u);
}

TEST_F(AccountingTest, SnapshotCountsOpenIntervalsWithoutClosingThem) {
  Change(0, 2, 0, kWait, kRun, 100);
  Change(1, 2, 1, kRun, kBlk, 100);
  Change(1, 2, 1, kBlk, kWait, 120);
  // Both CPUs heard from up to 150: open intervals are vouched for up to there.
  Add(0, MakeRecord(ev::kCsched2Tick, {}, 150));
  Add(1, MakeRecord(ev::kCsched2Tick, {}, 150));

  const AccountingSnapshot at150 = engine.Snapshot(150);
  const DomainTotals* early = Find(at150, 2);
  EXPECT_EQ(early->vcpus[0].running_ns, 50u);
  EXPECT_EQ(early->vcpus[1].blocked_ns, 20u);
  EXPECT_EQ(early->vcpus[1].runnable_ns, 30u);
  EXPECT_EQ(early->run_slices, 0u) << "an open interval is not a completed slice";

  engine.EndOfInput();  // nothing more can come: open intervals run to the snapshot

  const AccountingSnapshot later = engine.Snapshot(400);
  EXPECT_EQ(Find(later, 2)->vcpus[0].running_ns, 300u);
  EXPECT_EQ(Find(later, 2)->vcpus[1].runnable_ns, 280u);
  EXPECT_EQ(FindCpu(later, 0)->accounted_ns, 300u);
  EXPECT_EQ(FindCpu(later, 0)->elapsed_ns, 300u) << "elapsed runs to the snapshot as well";
}

TEST_F(AccountingTest, IdleDomainCoversTheGapsAndCaptureIsComplete) {
  constexpr uint32_t kIdle = ev::kIdleDomain;
  Change(0, kIdle, 0, kWait, kRun, 1000);  // the CPU's first record: idle is dispatched
  Change(0, kIdle, 0, kRun, kWait, 3000);
  Change(0, 7, 0, kWait, kRun, 3000);
  Change(0, 7, 0, kRun, kBlk, 8000);
  Change(0, kIdle, 0, kWait, kRun, 8000);
  engine.EndOfInput();  // the open interval runs to the snapshot

  const AccountingSnapshot s = engine.Snapshot(11000);
  EXPECT_EQ(Find(s, kIdle)->running_ns, 2000u + 3000u);
  EXPECT_EQ(Find(s, 7)->running_ns, 5000u);
  const CpuTotals* cpu = FindCpu(s, 0);
  EXPECT_EQ(cpu->elapsed_ns, 10000u);
  EXPECT_EQ(cpu->accounted_ns, 10000u);
  EXPECT_DOUBLE_EQ(cpu->capture_ratio(), 1.0);
}

TEST_F(AccountingTest, UnknownStartCountsAgainstCapture) {
  Add(0, MakeRecord(ev::kCsched2Tick, {}, 0x100));
  Change(0, 4, 0, kWait, kRun, 0x100 + 250);
  engine.EndOfInput();  // the open interval runs to the snapshot
  const AccountingSnapshot s = engine.Snapshot(0x100 + 1000);
  const CpuTotals* cpu = FindCpu(s, 0);
  EXPECT_EQ(cpu->unknown_start_ns, 250u);
  EXPECT_EQ(cpu->accounted_ns, 750u);
  EXPECT_DOUBLE_EQ(cpu->capture_ratio(), 0.75);
}

TEST_F(AccountingTest, LostRecordsGoToTheCpuAndTheDomainTheRecordNames) {
  Change(1, 5, 0, kWait, kRun, 1000);
  // Records dropped on CPU 1 from 3000 on; reported at 4000 while d6v2 runs there.
  Add(1, LostRecords(/*count=*/42, /*domid=*/6, /*vcpu=*/2, /*first_tsc=*/3000, /*tsc=*/4000));
  Change(1, 6, 2, kRun, kBlk, 4500);  // the named vCPU runs from the report on

  const AccountingSnapshot s = engine.Snapshot(5000);
  EXPECT_EQ(s.lost_records, 42u);
  EXPECT_EQ(FindCpu(s, 1)->lost_records, 42u);
  EXPECT_EQ(FindCpu(s, 1)->lost_gap_ns, 1000u);
  EXPECT_EQ(Find(s, 6)->lost_records, 42u);
  EXPECT_EQ(Find(s, 5)->lost_records, 0u);
  // d5 ran on CPU 1 up to the first loss; after that nobody knows, so it is not credited.
  EXPECT_EQ(Find(s, 5)->running_ns, 2000u);
  EXPECT_EQ(Find(s, 6)->running_ns, 500u);
  EXPECT_EQ(Find(s, 6)->dispatches, 0u) << "a report is not a dispatch";
  EXPECT_EQ(Find(s, 6)->run_slices, 0u) << "nor does it start a slice of known length";
  EXPECT_EQ(FindCpu(s, 1)->accounted_ns, 2000u + 500u);
  EXPECT_DOUBLE_EQ(FindCpu(s, 1)->capture_ratio(), 2500.0 / 3000.0)
      << "the gap is explained by loss; the last 500 ns nobody is known to run";
  EXPECT_EQ(s.anomalies, 0u);
}

TEST_F(AccountingTest, LossBeforeTheCpuStreamStartsIsNoGap) {
  // The buffers were full since boot: the stream starts with the report of what was dropped.
  Add(0, LostRecords(1000000, 0, 0, /*first_tsc=*/5, /*tsc=*/9000));
  Change(0, 0, 0, kWait, kRun, 9000);
  const AccountingSnapshot s = engine.Snapshot(10000);
  EXPECT_EQ(FindCpu(s, 0)->lost_gap_ns, 0u);
  EXPECT_EQ(FindCpu(s, 0)->lost_records, 1000000u);
  EXPECT_EQ(Find(s, 0)->lost_records, 1000000u);
}

TEST_F(AccountingTest, DestroyedDomainGetsOneFinalRecordAndAReusedIdStartsFresh) {
  std::vector<DomainTotals> finals;
  engine.OnFinal([&](const DomainTotals& t) { finals.push_back(t); });

  Add(0, MakeRecord(ev::kDomAdd, {9}, 10));
  Add(0, MakeRecord(ev::kDom0DomAdd, {9}, 11));  // Xen traces both: one creation
  Change(0, 9, 0, kOff, kWait, 100);
  Change(0, 9, 0, kWait, kRun, 150);
  Change(0, 9, 0, kRun, kOff, 450);
  Add(0, MakeRecord(ev::kDomRem, {9}, 500));
  Add(0, MakeRecord(ev::kDom0DomRem, {9}, 501));  // the second REM: no second final

  ASSERT_EQ(finals.size(), 1u);
  EXPECT_TRUE(finals[0].destroyed);
  EXPECT_EQ(finals[0].domid, 9u);
  EXPECT_EQ(finals[0].running_ns, 300u);
  EXPECT_EQ(finals[0].runnable_ns, 50u);
  EXPECT_EQ(finals[0].offline_ns, 50u) << "offline until the REM";
  const uint64_t first_instance = finals[0].instance;

  // The destroyed domain stays listed, frozen, until forgotten.
  AccountingSnapshot s = engine.Snapshot(2000);
  ASSERT_NE(Find(s, 9), nullptr);
  EXPECT_TRUE(Find(s, 9)->destroyed);
  EXPECT_EQ(Find(s, 9)->offline_ns, 50u);

  Add(0, MakeRecord(ev::kDomAdd, {9}, 3000));
  Change(0, 9, 0, kOff, kWait, 3100);
  Change(0, 9, 0, kWait, kRun, 3200);
  engine.EndOfInput();  // the open interval runs to the snapshot
  s = engine.Snapshot(3300);
  const DomainTotals* reborn = Find(s, 9);
  ASSERT_NE(reborn, nullptr);
  EXPECT_FALSE(reborn->destroyed);
  EXPECT_NE(reborn->instance, first_instance);
  EXPECT_EQ(reborn->running_ns, 100u);
  EXPECT_EQ(reborn->runnable_ns, 100u);
  EXPECT_EQ(reborn->dispatches, 1u);
  EXPECT_EQ(finals.size(), 1u);
}

TEST_F(AccountingTest, AddOverALiveDomainEndsTheOldIncarnation) {
  std::vector<DomainTotals> finals;
  engine.OnFinal([&](const DomainTotals& t) { finals.push_back(t); });
  Change(0, 12, 0, kWait, kRun, 100);
  Change(0, 12, 0, kRun, kBlk, 300);
  Add(0, MakeRecord(ev::kDomAdd, {12}, 1000));  // its REM was lost

  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].running_ns, 200u);
  EXPECT_EQ(finals[0].blocked_ns, 700u);
  const AccountingSnapshot s = engine.Snapshot(1500);
  const DomainTotals* fresh = Find(s, 12);
  EXPECT_EQ(fresh->running_ns + fresh->blocked_ns + fresh->runnable_ns, 0u);
  EXPECT_NE(fresh->instance, finals[0].instance);
}

TEST_F(AccountingTest, ForgetDestroyedDropsThemFromSnapshots) {
  Change(0, 3, 0, kWait, kRun, 100);
  Add(0, MakeRecord(ev::kDomRem, {3}, 200));
  EXPECT_NE(Find(engine.Snapshot(300), 3), nullptr);
  engine.ForgetDestroyed();
  EXPECT_EQ(Find(engine.Snapshot(300), 3), nullptr);
}

TEST_F(AccountingTest, WakesBlocksAndAllocatedSlices) {
  Add(0, MakeRecord(ev::kWake, {4, 1}, 100));
  Add(0, MakeRecord(ev::kWake, {4, 1}, 110));
  Add(0, MakeRecord(ev::kBlock, {4, 0}, 120));
  Add(0, MakeRecord(ev::kSwitchInfNext, {4, 1, 5000, 1000000}, 130));
  Add(0, MakeRecord(ev::kSwitchInfNext, {4, 0, 5000, ev::kNoTimeLimit}, 140));
  const AccountingSnapshot s = engine.Snapshot(200);
  const DomainTotals* d = Find(s, 4);
  EXPECT_EQ(d->wakes, 2u);
  EXPECT_EQ(d->vcpus[1].wakes, 2u);
  EXPECT_EQ(d->blocks, 1u);
  EXPECT_EQ(d->vcpus[0].blocks, 1u);
  EXPECT_EQ(d->allocated_ns, 1000000u) << "next_time 0xffffffff means no limit, not 4.29 s";
  EXPECT_EQ(d->allocations, 1u);
}

TEST_F(AccountingTest, HypercallsAndIoGoToTheDomainRunningOnThatCpu) {
  constexpr uint32_t kEventChannelOp = 32;
  constexpr uint32_t kMmuUpdate = 1;
  Add(0, MakeRecord(ev::kPvHypercallV2, {kMmuUpdate}, 50));  // nobody known on CPU 0 yet
  Change(0, 8, 0, kWait, kRun, 100);
  Change(1, 2, 0, kWait, kRun, 100);
  Add(0, MakeRecord(ev::kPvHypercallV2, {kMmuUpdate}, 110));
  Add(0, MakeRecord(ev::kPvHypercallV2, {kEventChannelOp}, 120));
  Add(1, MakeRecord(ev::kHvmIoWrite, {0x3f8, 1}, 130));
  Add(1, MakeRecord(ev::kHvmCpuid, {1, 2, 3, 4, 5}, 140));  // neither

  engine.EndOfInput();
  const AccountingSnapshot s = engine.Snapshot(200);
  EXPECT_EQ(Find(s, 8)->hypercalls, 2u);
  EXPECT_EQ(Find(s, 8)->io_records, 1u);
  EXPECT_EQ(Find(s, 2)->hypercalls, 0u);
  EXPECT_EQ(Find(s, 2)->io_records, 1u);
  EXPECT_EQ(FindCpu(s, 0)->unattributed, 1u);
  EXPECT_EQ(FindCpu(s, 0)->hypercalls, 3u);
}

// Activity is charged at the CPU's next scheduler record (or EndOfInput), to whoever runs there
// then; until then only the CPU's counts hold it. A domain destroyed meanwhile (its final record
// out) is not charged after the fact.
TEST_F(AccountingTest, ActivityIsChargedAtTheCpusNextSchedulerRecord) {
  constexpr uint32_t kMmuUpdate = 1;
  std::vector<DomainTotals> finals;
  engine.OnFinal([&](const DomainTotals& d) { finals.push_back(d); });
  Change(0, 3, 0, kWait, kRun, 100);
  Change(1, 4, 0, kWait, kRun, 100);
  Add(0, MakeRecord(ev::kPvHypercallV2, {kMmuUpdate}, 110));
  Add(1, MakeRecord(ev::kPvHypercallV2, {kMmuUpdate}, 115));
  AccountingSnapshot s = engine.Snapshot(120);
  EXPECT_EQ(FindCpu(s, 0)->hypercalls, 1u);
  EXPECT_EQ(Find(s, 3)->hypercalls, 0u) << "not charged before CPU 0's next scheduler record";

  Add(0, MakeRecord(ev::kPvHypercallV2, {kMmuUpdate}, 130));
  Add(1, MakeRecord(ev::kDomRem, {3}, 140));  // domain 3 destroyed, seen on CPU 1
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].domid, 3u);
  EXPECT_EQ(finals[0].hypercalls, 0u);
  Change(0, 5, 0, kWait, kRun, 150);  // CPU 0's next scheduler record
  s = engine.Snapshot(160);
  EXPECT_EQ(FindCpu(s, 0)->hypercalls, 2u);
  EXPECT_EQ(FindCpu(s, 0)->unattributed, 2u) << "not charged to the destroyed domain";
  EXPECT_EQ(Find(s, 5)->hypercalls, 0u);
  EXPECT_EQ(Find(s, 4)->hypercalls, 1u) << "charged at CPU 1's DOM_REM record";

  Add(0, MakeRecord(ev::kPvHypercallV2, {kMmuUpdate}, 170));
  s = engine.Snapshot(175);
  EXPECT_EQ(Find(s, 5)->hypercalls, 0u);
  engine.EndOfInput();
  s = engine.Snapshot(180);
  EXPECT_EQ(Find(s, 5)->hypercalls, 1u) << "the input ended: charged to who runs on CPU 0";
  EXPECT_EQ(FindCpu(s, 0)->hypercalls, 3u);
}

TEST_F(AccountingTest, DispatchOtherThanTheAnnouncedOneIsAnAnomaly) {
  Add(0, MakeRecord(ev::kSwitchInfNext, {1, 0, 0, ev::kNoTimeLimit}, 100));
  Change(0, 1, 0, kWait, kRun, 110);
  Add(0, MakeRecord(ev::kSwitchInfNext, {2, 0, 0, ev::kNoTimeLimit}, 200));
  Change(0, 1, 0, kRun, kWait, 205);
  Change(0, 3, 0, kWait, kRun, 210);
  const AccountingSnapshot s = engine.Snapshot(300);
  EXPECT_EQ(s.anomaly_kinds.switch_mismatch, 1u);
  EXPECT_EQ(s.anomalies, 1u);
}

TEST_F(AccountingTest, IdsBeyondXensLimitsAreCountedAndIgnored) {
  Change(0, 0x8000, 0, kWait, kRun, 100);  // domain id 32768
  Change(0, 1, kMaxVcpuId + 1, kWait, kRun, 100);
  Add(kMaxCpuId + 1, RunstateChange(1, 0, kWait, kRun, 100));
  const AccountingSnapshot s = engine.Snapshot(200);
  EXPECT_EQ(s.anomaly_kinds.bad_id, 3u);
  EXPECT_EQ(s.records, 3u);
  for (const DomainTotals& d : s.domains) EXPECT_LE(d.vcpus.size(), 1u);
}

TEST_F(AccountingTest, ManyDomainsAndVcpus) {
  // Every id up to Xen's limit, several vCPUs each: flat storage must hold them all.
  uint64_t tsc = 1;
  for (uint32_t dom = 0; dom <= 32767; dom += 97) {
    for (uint32_t vcpu = 0; vcpu < 4; ++vcpu) {
      Change(vcpu, dom, vcpu, kWait, kRun, tsc);
      Change(vcpu, dom, vcpu, kRun, kBlk, tsc + 10);
    }
    tsc += 20;
  }
  const AccountingSnapshot s = engine.Snapshot(tsc);
  ASSERT_EQ(s.domains.size(), 32767u / 97 + 1);
  for (const DomainTotals& d : s.domains) {
    EXPECT_EQ(d.running_ns, 40u);
    EXPECT_EQ(d.dispatches, 4u);
  }
  EXPECT_EQ(s.anomalies, 0u);
}

TEST_F(AccountingTest, RecordsWithoutTscDoNotStartTheClock) {
  tracefmt::Record wrap;
  wrap.event = ev::kWrapBuffer;
  engine.Add(0, /*tsc=*/0, wrap);  // a merged WRAP before any timed record carries TSC 0
  Change(0, 1, 0, kWait, kRun, 5000);
  const AccountingSnapshot s = engine.Snapshot(6000);
  EXPECT_EQ(FindCpu(s, 0)->first_tsc, 5000u);
  EXPECT_EQ(FindCpu(s, 0)->elapsed_ns, 1000u);
  EXPECT_EQ(FindCpu(s, 0)->wrap_records, 1u);
  EXPECT_EQ(engine.TscToNs(6000), 1000u);
}

TEST_F(AccountingTest, TscIsConvertedWithTheGivenFrequency) {
  AccountingEngine slow({.cpu_khz = 2596120});
  const tracefmt::Record a = RunstateChange(1, 0, kWait, kRun, 1'000'000);
  const tracefmt::Record b = RunstateChange(1, 0, kRun, kBlk, 1'000'000 + 2'596'120'000ull);
  slow.Add(0, a.tsc, a);
  slow.Add(0, b.tsc, b);
  const AccountingSnapshot s = slow.Snapshot(b.tsc);
  // One second of a 2.596 GHz TSC; TscClock is exact to within a nanosecond.
  EXPECT_NEAR(static_cast<double>(s.domains[0].running_ns), 1e9, 1.0);
}

}  // namespace
}  // namespace xenbaked
