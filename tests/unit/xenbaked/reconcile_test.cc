// The reconciliation arithmetic: periods, vCPUs appearing and vanishing between reads, counter
// resets on id reuse, unknown time and the read lag explaining a difference.
#include "xenbaked/reconcile.h"

#include <gtest/gtest.h>

namespace xenbaked {
namespace {

constexpr uint64_t kMs = 1'000'000;

// A 1 GHz TSC: one tick is one ns, so TSCs below read as engine nanoseconds.
struct Trace {
  AccountingSnapshot snap;
  Trace(uint64_t tsc) {
    snap.cpu_khz = 1'000'000;
    snap.tsc = tsc;
    snap.cpus.push_back(CpuTotals{.cpu = 0, .last_tsc = tsc});
    snap.cpus.push_back(CpuTotals{.cpu = 1, .last_tsc = tsc});
  }
  Trace& Vcpu(uint32_t domid, uint32_t vcpu, uint64_t running, uint64_t unknown = 0,
              uint64_t instance = 1, tracefmt::Runstate state = tracefmt::Runstate::kBlocked) {
    DomainTotals* d = nullptr;
    for (DomainTotals& x : snap.domains)
      if (x.domid == domid) d = &x;
    if (d == nullptr) {
      d = &snap.domains.emplace_back();
      d->domid = domid;
      d->instance = instance;
    }
    if (d->vcpus.size() <= vcpu) d->vcpus.resize(vcpu + 1);
    d->vcpus[vcpu] = VcpuTotals{
        .vcpu = vcpu, .seen = true, .running_ns = running, .unknown_ns = unknown, .state = state};
    return *this;
  }
};

struct Xen {
  VcpuCpuTimes times;
  explicit Xen(uint64_t read_tsc) { times.read_tsc = read_tsc; }
  Xen& Vcpu(uint32_t domid, uint32_t vcpu, uint64_t cpu_time, uint64_t instance = 7) {
    times.vcpus.push_back(
        {.domid = domid, .vcpu = vcpu, .instance = instance, .cpu_time_ns = cpu_time});
    return *this;
  }
};

const DomainReconcile* Find(const ReconcileReport& r, uint32_t domid) {
  for (const DomainReconcile& d : r.domains)
    if (d.domid == domid) return &d;
  return nullptr;
}

TEST(Reconcile, FirstReadIsABaselineThenEachPeriodComparesDeltas) {
  Reconciler rec;
  const ReconcileReport& r0 =
      rec.Update(Trace(1000 * kMs).Vcpu(1, 0, 300 * kMs).snap,
                 Xen(1000 * kMs).Vcpu(1, 0, 5000 * kMs).times, 0);  // Xen counted since boot
  EXPECT_TRUE(r0.domains.empty());
  EXPECT_EQ(r0.vcpus_appeared, 1u);

  const ReconcileReport& r1 = rec.Update(Trace(2000 * kMs).Vcpu(1, 0, 700 * kMs).snap,
                                         Xen(2000 * kMs).Vcpu(1, 0, 5410 * kMs).times, 1000 * kMs);
  ASSERT_EQ(r1.domains.size(), 1u);
  EXPECT_EQ(r1.period_ns, 1000 * kMs);
  EXPECT_EQ(r1.domains[0].trace_running_ns, 400 * kMs);
  EXPECT_EQ(r1.domains[0].xen_cpu_ns, 410 * kMs);
  EXPECT_EQ(r1.domains[0].error_ns(), 10 * static_cast<int64_t>(kMs));
  // Nothing explains 10 ms: no unknown time, the frontier was at the read, 0.1 % of 410 ms is less.
  EXPECT_FALSE(r1.domains[0].explained());
  EXPECT_EQ(r1.unexplained_periods, 1u);

  const ReconcileReport& r2 = rec.Update(Trace(3000 * kMs).Vcpu(1, 0, 900 * kMs).snap,
                                         Xen(3000 * kMs).Vcpu(1, 0, 5610 * kMs).times, 1000 * kMs);
  ASSERT_EQ(r2.domains.size(), 1u);
  EXPECT_EQ(r2.domains[0].error_ns(), 0);
  EXPECT_TRUE(r2.domains[0].explained());
  // Totals over both compared periods, from the first read's baseline.
  EXPECT_EQ(r2.domains[0].trace_running_total_ns, 600 * kMs);
  EXPECT_EQ(r2.domains[0].xen_cpu_total_ns, 610 * kMs);
  EXPECT_EQ(r2.host.xen_cpu_total_ns, 610 * kMs);
  EXPECT_EQ(r2.unexplained_periods, 1u);
}

TEST(Reconcile, AVcpuAppearingCountsFromItsFirstRead) {
  Reconciler rec;
  rec.Update(Trace(1000).Vcpu(1, 0, 100).snap, Xen(1000).Vcpu(1, 0, 100).times, 0);
  // vCPU 1 comes online between the reads: its 900 ns before this read are no period's.
  const ReconcileReport& r1 = rec.Update(Trace(2000).Vcpu(1, 0, 200).Vcpu(1, 1, 900).snap,
                                         Xen(2000).Vcpu(1, 0, 200).Vcpu(1, 1, 900).times, 1000);
  ASSERT_EQ(r1.domains.size(), 1u);
  EXPECT_EQ(r1.domains[0].vcpus, 1u);
  EXPECT_EQ(r1.domains[0].xen_cpu_ns, 100u);
  EXPECT_EQ(r1.vcpus_appeared, 2u);
  const ReconcileReport& r2 = rec.Update(Trace(3000).Vcpu(1, 0, 300).Vcpu(1, 1, 1500).snap,
                                         Xen(3000).Vcpu(1, 0, 300).Vcpu(1, 1, 1500).times, 1000);
  EXPECT_EQ(r2.domains[0].vcpus, 2u);
  EXPECT_EQ(r2.domains[0].xen_cpu_ns, 700u);
  EXPECT_EQ(r2.domains[0].trace_running_ns, 700u);
}

TEST(Reconcile, AVcpuVanishingIsDroppedAndItsDomainGoesOn) {
  Reconciler rec;
  rec.Update(Trace(1000).Vcpu(1, 0, 100).Vcpu(1, 1, 100).Vcpu(2, 0, 50).snap,
             Xen(1000).Vcpu(1, 0, 100).Vcpu(1, 1, 100).Vcpu(2, 0, 50).times, 0);
  // vCPU 1 of domain 1 offlined and domain 2 destroyed: neither is listed now.
  const ReconcileReport& r1 = rec.Update(Trace(2000).Vcpu(1, 0, 400).Vcpu(1, 1, 150).snap,
                                         Xen(2000).Vcpu(1, 0, 400).times, 1000);
  ASSERT_EQ(r1.domains.size(), 1u);
  EXPECT_EQ(r1.domains[0].vcpus, 1u);
  EXPECT_EQ(r1.domains[0].xen_cpu_ns, 300u);
  EXPECT_EQ(r1.vcpus_vanished, 2u);
  EXPECT_EQ(Find(r1, 2), nullptr);
  // Coming back, it starts a new baseline rather than matching a stale one.
  const ReconcileReport& r2 = rec.Update(Trace(3000).Vcpu(1, 0, 500).Vcpu(1, 1, 900).snap,
                                         Xen(3000).Vcpu(1, 0, 500).Vcpu(1, 1, 900).times, 1000);
  EXPECT_EQ(r2.domains[0].vcpus, 1u);
  EXPECT_EQ(r2.vcpus_appeared, 4u);
}

TEST(Reconcile, AReusedDomainIdRestartsTheBaselineAndTheTotals) {
  Reconciler rec;
  rec.Update(Trace(1000).Vcpu(5, 0, 100).snap, Xen(1000).Vcpu(5, 0, 800, 7).times, 0);
  const ReconcileReport& r1 =
      rec.Update(Trace(2000).Vcpu(5, 0, 600).snap, Xen(2000).Vcpu(5, 0, 1300, 7).times, 1000);
  EXPECT_EQ(Find(r1, 5)->xen_cpu_total_ns, 500u);
  // Destroyed and recreated with id 5 between two reads: a new handle on Xen's side; the trace
  // has not merged the DOM_ADD yet (same engine instance). Nothing is compared.
  const ReconcileReport& r2 =
      rec.Update(Trace(3000).Vcpu(5, 0, 700).snap, Xen(3000).Vcpu(5, 0, 40, 9).times, 1000);
  EXPECT_EQ(Find(r2, 5), nullptr);
  EXPECT_EQ(r2.resets, 1u);
  // Then the engine's new incarnation: still a new baseline.
  const ReconcileReport& r3 = rec.Update(Trace(4000).Vcpu(5, 0, 500, 0, /*instance=*/2).snap,
                                         Xen(4000).Vcpu(5, 0, 540, 9).times, 1000);
  EXPECT_EQ(Find(r3, 5), nullptr);
  const ReconcileReport& r4 =
      rec.Update(Trace(5000).Vcpu(5, 0, 900, 0, 2).snap, Xen(5000).Vcpu(5, 0, 940, 9).times, 1000);
  ASSERT_NE(Find(r4, 5), nullptr);
  EXPECT_EQ(Find(r4, 5)->xen_cpu_ns, 400u);
  EXPECT_EQ(Find(r4, 5)->xen_cpu_total_ns, 400u);  // the old incarnation's 500 are not carried
  EXPECT_EQ(Find(r4, 5)->instance, 2u);
  // The host's totals keep every compared period.
  EXPECT_EQ(r4.host.xen_cpu_total_ns, 900u);
}

TEST(Reconcile, CpuTimeGoingBackIsAResetEvenWithoutAnInstance) {
  Reconciler rec;
  rec.Update(Trace(1000).Vcpu(3, 0, 100).snap, Xen(1000).Vcpu(3, 0, 900, 0).times, 0);
  const ReconcileReport& r1 =
      rec.Update(Trace(2000).Vcpu(3, 0, 150).snap, Xen(2000).Vcpu(3, 0, 30, 0).times, 1000);
  EXPECT_EQ(Find(r1, 3), nullptr);
  EXPECT_EQ(r1.resets, 1u);
}

TEST(Reconcile, UnknownTimeExplainsTheTraceFallingShort) {
  Reconciler rec;
  rec.Update(Trace(1000 * kMs).Vcpu(1, 0, 0).snap, Xen(1000 * kMs).Vcpu(1, 0, 0).times, 0);
  // A loss gap hid 30 ms of running: the engine reports 40 ms unknown.
  const ReconcileReport& r1 = rec.Update(Trace(2000 * kMs).Vcpu(1, 0, 470 * kMs, 40 * kMs).snap,
                                         Xen(2000 * kMs).Vcpu(1, 0, 500 * kMs).times, 1000 * kMs);
  EXPECT_EQ(r1.domains[0].error_ns(), 30 * static_cast<int64_t>(kMs));
  EXPECT_EQ(r1.domains[0].unknown_ns, 40 * kMs);
  EXPECT_TRUE(r1.domains[0].explained());
  // The same shortfall with only 10 ms unknown is not explained.
  const ReconcileReport& r2 = rec.Update(Trace(3000 * kMs).Vcpu(1, 0, 940 * kMs, 50 * kMs).snap,
                                         Xen(3000 * kMs).Vcpu(1, 0, 1000 * kMs).times, 1000 * kMs);
  EXPECT_EQ(r2.domains[0].error_ns(), 30 * static_cast<int64_t>(kMs));
  EXPECT_FALSE(r2.domains[0].explained());
  // Unknown time never explains the trace showing more than Xen.
  const ReconcileReport& r3 = rec.Update(Trace(4000 * kMs).Vcpu(1, 0, 1500 * kMs, 150 * kMs).snap,
                                         Xen(4000 * kMs).Vcpu(1, 0, 1450 * kMs).times, 1000 * kMs);
  EXPECT_LT(r3.domains[0].error_ns(), 0);
  EXPECT_FALSE(r3.domains[0].explained());
}

TEST(Reconcile, TheReadLagBoundsTheDifferenceBothWays) {
  Reconciler rec;
  using tracefmt::Runstate;
  // Running on CPU 1, whose last record is 5 ms before the read: up to 5 ms may be Xen's only.
  Trace t0(1000 * kMs);
  t0.snap.cpus[1].last_tsc = 995 * kMs;
  t0.Vcpu(1, 0, 100 * kMs, 0, 1, Runstate::kRunning).snap.domains[0].vcpus[0].last_cpu = 1;
  rec.Update(t0.snap, Xen(1000 * kMs).Vcpu(1, 0, 105 * kMs).times, 0);
  EXPECT_EQ(rec.report().read_tsc_known, true);

  // Now the frontier is at the read: the 5 ms Xen had already counted show in the trace's delta.
  const ReconcileReport& r1 = rec.Update(Trace(2000 * kMs).Vcpu(1, 0, 600 * kMs).snap,
                                         Xen(2000 * kMs).Vcpu(1, 0, 600 * kMs).times, 1000 * kMs);
  EXPECT_EQ(r1.domains[0].error_ns(), -5 * static_cast<int64_t>(kMs));
  EXPECT_EQ(r1.domains[0].lag_before_ns, 5 * kMs);
  EXPECT_TRUE(r1.domains[0].explained());

  // A read 3 ms past a frontier with a running vCPU explains up to 3 ms more on Xen's side.
  Trace t2(3000 * kMs);
  t2.Vcpu(1, 0, 1000 * kMs, 0, 1, Runstate::kRunning);
  const ReconcileReport& r2 =
      rec.Update(t2.snap, Xen(3003 * kMs).Vcpu(1, 0, 1003 * kMs).times, 1000 * kMs);
  EXPECT_EQ(r2.domains[0].lag_after_ns, 3 * kMs);
  EXPECT_TRUE(r2.domains[0].explained());
  const ReconcileReport& r3 = rec.Update(Trace(4000 * kMs).Vcpu(1, 0, 1500 * kMs).snap,
                                         Xen(4000 * kMs).Vcpu(1, 0, 1515 * kMs).times, 1000 * kMs);
  EXPECT_EQ(r3.domains[0].error_ns(), 12 * static_cast<int64_t>(kMs));  // 15 − the 3 ms before
  EXPECT_FALSE(r3.domains[0].explained());
}

TEST(Reconcile, AReadTscFromAnotherClockFallsBackToTheConfiguredLag) {
  Reconciler rec({.fallback_lag_ns = 20 * kMs});
  Trace t(1000 * kMs);
  t.Vcpu(1, 0, 0, 0, 1, tracefmt::Runstate::kRunning);
  // The machine's TSC under the shim: days past the simulator's.
  const ReconcileReport& r = rec.Update(t.snap, Xen(uint64_t{1} << 62).Vcpu(1, 0, 0).times, 0);
  EXPECT_FALSE(r.read_tsc_known);
  const ReconcileReport& r1 = rec.Update(Trace(2000 * kMs).Vcpu(1, 0, 1000 * kMs).snap,
                                         Xen(0).Vcpu(1, 0, 1000 * kMs).times, 1000 * kMs);
  EXPECT_EQ(r1.domains[0].lag_before_ns, 20 * kMs);
  EXPECT_EQ(r1.domains[0].lag_after_ns, 20 * kMs);  // a blocked vCPU: the oldest CPU's frontier
}

TEST(Reconcile, VcpusTheTraceHasNotSeenAreNotCompared) {
  Reconciler rec;
  rec.Update(Trace(1000).snap, Xen(1000).Vcpu(0, 0, 100).times, 0);
  const ReconcileReport& r =
      rec.Update(Trace(2000).Vcpu(0, 0, 10).snap, Xen(2000).Vcpu(0, 0, 900).times, 1000);
  EXPECT_TRUE(r.domains.empty());
  EXPECT_EQ(r.host.vcpus, 0u);
}

}  // namespace
}  // namespace xenbaked
