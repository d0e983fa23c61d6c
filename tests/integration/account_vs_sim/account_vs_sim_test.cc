// The accounting engine against the simulator's ground truth.
//
// The simulated host's rings are drained the way the daemon drains Xen's (tracefmt::DrainRing,
// publishing cons), merged by TSC (tracefmt::LiveMerger) and fed to the engine; windows come
// from WindowHistory fed with snapshots, as in the daemon. Each 10 s window's per-domain
// running, runnable and blocked time must equal the truth's difference over the same instants
// within 0.1%, and dispatch counts exactly.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <vector>

#include "sim_consumer.h"
#include "simulator/simulated_host.h"
#include "tracefmt/merge.h"
#include "tracefmt/ring.h"
#include "xenbaked/accounting.h"
#include "xenbaked/windows.h"

namespace {

using simulator::Truth;
using tracefmt::Runstate;
using xenbaked::AccountingEngine;
using xenbaked::AccountingSnapshot;
using xenbaked::testing::SimulatedConsumer;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSecond = 1'000'000'000;

// Per domain id (all incarnations in the window summed), the quantities compared.
struct Sums {
  std::array<uint64_t, 3> ns{};  // running, runnable, blocked
  uint64_t dispatches = 0;
  uint64_t unknown_ns = 0;  // the engine's: the truth may lie up to this above its figure
};
using SumsById = std::map<uint32_t, Sums>;

SumsById TruthSums(const Truth& t) {
  SumsById out;
  for (const simulator::DomainTruth& d : t.domains) {
    Sums& s = out[d.id];
    for (size_t st = 0; st < 3; ++st) s.ns[st] += d.TotalNs(static_cast<Runstate>(st));
    s.dispatches += d.TotalDispatches();
  }
  return out;
}

SumsById TruthDelta(const Truth& later, const Truth& earlier) {
  SumsById out = TruthSums(later);
  for (const auto& [id, s] : TruthSums(earlier)) {
    Sums& o = out[id];
    for (size_t st = 0; st < 3; ++st) o.ns[st] -= s.ns[st];
    o.dispatches -= s.dispatches;
  }
  return out;
}

SumsById EngineSums(const AccountingSnapshot& delta) {
  SumsById out;
  for (const xenbaked::DomainTotals& d : delta.domains) {
    Sums& s = out[d.domid];
    s.ns[0] += d.running_ns;
    s.ns[1] += d.runnable_ns;
    s.ns[2] += d.blocked_ns;
    s.dispatches += d.dispatches;
    s.unknown_ns += d.unknown_ns;
  }
  return out;
}

// Within 0.1% of the truth. The simulator stamps back-to-back records 200 TSC ticks apart, so a
// record's TSC can run a few µs ahead of its event's simulated time: values below 10 ms get a
// floor of 10 µs (0.1% of 10 ms).
// `unvouched_ns`: what the snapshots at the window's edges could not yet publish of the
// domain's open intervals (see UnvouchedNs).
void ExpectWithinTenthOfAPercent(uint64_t engine_ns, uint64_t truth_ns, const char* what,
                                 uint32_t domid, double unvouched_ns) {
  const double tolerance = std::max(0.001 * static_cast<double>(truth_ns), 10'000.0) + unvouched_ns;
  EXPECT_NEAR(static_cast<double>(engine_ns), static_cast<double>(truth_ns), tolerance)
      << what << " of domain " << domid;
}

// A snapshot publishes an open interval only as far as the trace vouches for it: at most up to
// the oldest last record over the CPUs before the snapshot's own TSC. So a window's figures may
// lag the truth by that much per vCPU at each edge (and catch up in the next window).
double UnvouchedNs(const AccountingSnapshot& s) {
  uint64_t oldest = s.tsc;
  for (const xenbaked::CpuTotals& c : s.cpus) oldest = std::min(oldest, c.last_tsc);
  return static_cast<double>(s.tsc - oldest) * 1e6 / static_cast<double>(s.cpu_khz);
}

void ExpectWindowMatchesTruth(const xenbaked::Window& w, const Truth& later, const Truth& earlier,
                              double unvouched_ns) {
  const SumsById truth = TruthDelta(later, earlier);
  const SumsById engine = EngineSums(w.delta);
  size_t compared = 0;
  for (const auto& [id, t] : truth) {
    if (t.ns[0] + t.ns[1] + t.ns[2] == 0 && t.dispatches == 0) continue;  // not alive then
    auto it = engine.find(id);
    // A domain no record ever named cannot be known: with every CPU saturated the idle vCPUs
    // never run, and Xen traces nothing for them.
    if (it == engine.end() && t.ns[0] == 0 && TruthSums(later).at(id).dispatches == 0) continue;
    ASSERT_NE(it, engine.end()) << "domain " << id << " missing in window " << w.index;
    const auto vcpus =
        static_cast<double>(later.FindLive(static_cast<uint16_t>(id)) != nullptr
                                ? later.FindLive(static_cast<uint16_t>(id))->vcpus.size()
                                : 4);
    // A domain destroyed in the window ends with its vCPUs' last intervals unknown as far as some
    // CPU had not recorded past them (a loss reported later could have hidden a change there, and
    // the final record cannot be taken back): the truth may lie that much above the figure.
    const double lag = vcpus * unvouched_ns;
    const double unknown = static_cast<double>(it->second.unknown_ns);
    for (size_t s = 0; s < 3; ++s) {
      const char* what = s == 0 ? "running" : s == 1 ? "runnable" : "blocked";
      ExpectWithinTenthOfAPercent(it->second.ns[s], t.ns[s], what, id,
                                  lag + (t.ns[s] > it->second.ns[s] ? unknown : 0.0));
    }
    EXPECT_EQ(it->second.dispatches, t.dispatches) << "dispatches of domain " << id;
    ++compared;
  }
  EXPECT_GT(compared, 0u);
}

TEST(AccountVsSimulatorTest, ThousandDomainsOfFourVcpusWithChurnMatchTheTruthPerWindow) {
  simulator::HostConfig config;
  config.workload.seed = 7;
  config.workload.cpu_ids = {0, 1, 2, 3, 4, 5, 6, 7};
  config.workload.domains = 1000;
  config.workload.vcpus_per_domain = 4;
  config.workload.churn_hz = 20;
  config.workload.mean_lifetime_ns = 300 * kMs;
  config.workload.first_new_domid = 0x7fe8;  // the rover wraps below the reserved ids
  SimulatedConsumer sim(config, /*pages=*/64);

  xenbaked::WindowHistory history({.lengths_ns = {10 * kSecond}, .history = 8});
  sim.engine().OnFinal([&](const xenbaked::DomainTotals& f) { history.AddFinal(f); });
  std::vector<Truth> truths;
  std::vector<double> unvouched;
  // Snapshots 1 ms past each 10 s mark of engine time (which starts at the first record, about
  // 1 ms into the simulation), so each lands just past the engine's window boundary.
  sim.Run(1 * kMs, kMs);
  for (int k = 0; k <= 3; ++k) {
    if (k > 0) sim.Run(10 * kSecond + (k == 1 ? 1 * kMs : 0), 10 * kMs);
    const AccountingSnapshot snap = sim.SnapshotNow();
    history.Update(snap);
    unvouched.push_back(UnvouchedNs(snap));
    truths.push_back(sim.host().TruthSnapshot());
  }
  ASSERT_EQ(history.windows(0).size(), 3u);
  // Window 0 is skipped: the first change seen for a vCPU only opens its interval, and with
  // 4,000 vCPUs on 8 CPUs a queued vCPU's first change can come seconds in.
  for (size_t k = 1; k < 3; ++k) {
    SCOPED_TRACE(testing::Message() << "window " << k);
    const xenbaked::Window& w = history.windows(0)[k];
    ExpectWindowMatchesTruth(w, truths[k + 1], truths[k], unvouched[k] + unvouched[k + 1]);
    for (const xenbaked::CpuTotals& c : w.delta.cpus)
      EXPECT_GE(c.capture_ratio(), 0.999) << "cpu " << c.cpu;
  }
  const AccountingSnapshot totals = history.totals();
  EXPECT_EQ(totals.lost_records, 0u);
  EXPECT_EQ(totals.anomalies, 0u);
  EXPECT_EQ(sim.host().TruthSnapshot().TotalDropped(), 0u);
  size_t destroyed = 0;
  for (const auto& d : truths.back().domains) destroyed += d.alive ? 0 : 1;
  EXPECT_GT(destroyed, 100u) << "churn happened";
}

TEST(AccountVsSimulatorTest, ReusedIdsStartFreshAndEveryIncarnationIsAccounted) {
  simulator::HostConfig config;
  config.workload.seed = 3;
  config.workload.cpu_ids = {0, 1};
  config.workload.domains = 2;
  config.workload.vcpus_per_domain = 1;
  config.workload.hypercall_hz = 0;
  config.workload.io_hz = 0;
  config.workload.churn_hz = 40000;  // Xen's rover reuses an id only after a lap of all of them
  config.workload.mean_lifetime_ns = 100'000;
  config.workload.first_new_domid = 0x7fe8;
  SimulatedConsumer sim(config, /*pages=*/256);
  std::map<uint32_t, int> finals_by_id;
  sim.engine().OnFinal([&](const xenbaked::DomainTotals& f) { ++finals_by_id[f.domid]; });
  sim.Run(1 * kSecond, 1 * kMs);

  const Truth truth = sim.host().TruthSnapshot();
  ASSERT_EQ(truth.TotalDropped(), 0u);
  std::map<uint32_t, int> destroyed_by_id;
  for (const auto& d : truth.domains)
    if (!d.alive) ++destroyed_by_id[d.id];
  ASSERT_GE(destroyed_by_id[0x7fef], 2) << "ids were reused";
  EXPECT_EQ(finals_by_id, destroyed_by_id) << "one final record per destroyed incarnation";
  EXPECT_EQ(sim.SnapshotNow().anomalies, 0u);
}

TEST(AccountVsSimulatorTest, UnderOverloadLostRecordsEqualTheSimulatorsDropCount) {
  simulator::HostConfig config;
  config.workload.seed = 11;
  config.workload.cpu_ids = {0, 1, 2, 3};
  config.workload.domains = 40;
  config.workload.vcpus_per_domain = 2;
  config.workload.burst_interval_ns = 20 * kMs;
  SimulatedConsumer sim(config, /*pages=*/2);
  sim.Run(2 * kSecond, 200 * kMs);  // a consumer far too slow for 2-page buffers
  sim.Run(200 * kMs, 1 * kMs);      // then a prompt one: every pending loss gets reported

  const Truth truth = sim.host().TruthSnapshot();
  uint64_t pending = 0;
  for (const auto& c : truth.cpus) pending += c.trace.pending_lost;
  ASSERT_GT(truth.TotalDropped(), 1000u) << "the workload must overflow";
  EXPECT_EQ(pending, 0u);
  const AccountingSnapshot s = sim.SnapshotNow();
  EXPECT_EQ(s.lost_records, truth.TotalReported());
  EXPECT_EQ(s.lost_records, truth.TotalDropped());
  for (const auto& c : truth.cpus) {
    const auto it = std::find_if(s.cpus.begin(), s.cpus.end(),
                                 [&](const xenbaked::CpuTotals& t) { return t.cpu == c.cpu; });
    ASSERT_NE(it, s.cpus.end());
    EXPECT_EQ(it->lost_records, c.trace.dropped_reported) << "cpu " << c.cpu;
    // What loss leaves unaccounted is reported as the loss gap, not as missing capture.
    EXPECT_GE(it->capture_ratio(), 0.95) << "cpu " << c.cpu;
  }
}

}  // namespace
