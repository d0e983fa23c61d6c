// Under overload the engine's figures stay true: for every vCPU and domain the simulator's truth
// in each state lies within [reported, reported + unknown], whatever the loss.
//
// The sweep: trace buffers of 1, 2, 8 and 32 pages per CPU behind a consumer far too slow for
// them (bursts of records on top), 100 domains with churn, then a prompt consumer so that every
// pending loss gets reported. The table it prints (unknown as a share of elapsed against the
// lost-gap share, and the error of the vCPUs no gap touched) is the one in the README.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "sim_consumer.h"
#include "simulator/simulated_host.h"
#include "xenbaked/accounting.h"

namespace {

using simulator::Truth;
using xenbaked::AccountingSnapshot;
using xenbaked::DomainTotals;
using xenbaked::testing::SimulatedConsumer;

constexpr uint64_t kMs = 1'000'000;

// Per (domain id, vCPU id), all incarnations summed: running, runnable, blocked, offline, and
// (engine only) unknown.
using Key = std::pair<uint32_t, uint32_t>;
using Times = std::array<uint64_t, 5>;

struct SweepFigures {
  uint64_t violations = 0;
  uint64_t compared = 0;
  double unknown_share = 0;    // unknown over the elapsed time of every vCPU
  double lost_gap_share = 0;   // lost-gap time over the elapsed time of every CPU
  double untouched_error = 0;  // largest |reported - truth| / truth over untouched vCPUs
  uint64_t untouched = 0;      // vCPUs with (almost) no unknown time
  uint64_t lost_records = 0;
};

SweepFigures RunSweepPoint(uint32_t pages, uint64_t seed) {
  simulator::HostConfig config;
  config.workload.seed = seed;
  config.workload.cpu_ids = {0, 1, 2, 3};
  config.workload.domains = 100;
  config.workload.vcpus_per_domain = 2;
  config.workload.churn_hz = 20;
  config.workload.mean_lifetime_ns = 200 * kMs;
  config.workload.burst_interval_ns = 10 * kMs;
  // The simulator stamps back-to-back records 200 ticks apart, so the scheduler records after a
  // burst come up to burst_records × 77 ns late: 400 keep that to 31 µs (within the slack below).
  config.workload.burst_records = 400;
  SimulatedConsumer sim(config, pages);
  std::map<Key, Times> engine;
  auto add = [&](const DomainTotals& d) {
    for (const xenbaked::VcpuTotals& v : d.vcpus) {
      if (!v.seen) continue;
      Times& t = engine[{d.domid, v.vcpu}];
      t[0] += v.running_ns;
      t[1] += v.runnable_ns;
      t[2] += v.blocked_ns;
      t[3] += v.offline_ns;
      t[4] += v.unknown_ns;
    }
  };
  sim.engine().OnFinal(add);
  sim.Run(3000 * kMs, 500 * kMs);  // a consumer far too slow for the buffers
  sim.Run(100 * kMs, 1 * kMs);     // then a prompt one: every pending loss gets reported
  sim.engine().EndOfInput();
  const AccountingSnapshot s = sim.SnapshotNow();
  for (const DomainTotals& d : s.domains)
    if (!d.destroyed) add(d);  // the destroyed came through OnFinal

  const Truth truth = sim.host().TruthSnapshot();
  std::map<Key, Times> truth_times;
  for (const simulator::DomainTruth& d : truth.domains)
    for (const simulator::VcpuTruth& v : d.vcpus)
      for (size_t st = 0; st < 4; ++st) truth_times[{d.id, v.vcpu}][st] += v.state_ns[st];

  // The engine's time starts at its first record, the truth's at boot; and the simulator stamps
  // a record up to a few tens of µs after its event (back-to-back records 200 ticks apart).
  const uint64_t epoch_ns = sim.engine().NsToTsc(0) * 1'000'000 / sim.cpu_khz();
  const double slack_ns = 50'000.0 + static_cast<double>(epoch_ns);
  SweepFigures f;
  f.lost_records = s.lost_records;
  uint64_t unknown = 0;
  uint64_t elapsed = 0;
  for (const auto& [key, rep] : engine) {
    const Times& t = truth_times[key];
    for (size_t st = 0; st < 4; ++st) {
      const double slack = std::max(slack_ns, 0.001 * static_cast<double>(t[st]));
      const bool below = static_cast<double>(t[st]) + slack < static_cast<double>(rep[st]);
      const bool above = static_cast<double>(t[st]) > static_cast<double>(rep[st] + rep[4]) + slack;
      ++f.compared;
      if (below || above) {
        ++f.violations;
        ADD_FAILURE() << "pages " << pages << " seed " << seed << ": domain " << key.first
                      << " vCPU " << key.second << " state " << st << ": truth " << t[st]
                      << " outside [" << rep[st] << ", " << rep[st] + rep[4] << "]";
      }
    }
    unknown += rep[4];
    for (uint64_t x : rep) elapsed += x;
    // Untouched: nothing unknown but (at most) a moment before its first record.
    const uint64_t vcpu_elapsed = rep[0] + rep[1] + rep[2] + rep[3] + rep[4];
    if (rep[4] <= vcpu_elapsed / 1000) {
      ++f.untouched;
      for (size_t st = 0; st < 3; ++st) {
        if (t[st] < 100 * kMs) continue;  // below, the stamping slack dominates
        const double err = std::abs(static_cast<double>(rep[st]) - static_cast<double>(t[st])) /
                           static_cast<double>(t[st]);
        f.untouched_error = std::max(f.untouched_error, err);
      }
    }
  }
  uint64_t gap = 0;
  uint64_t cpu_elapsed = 0;
  for (const xenbaked::CpuTotals& c : s.cpus) {
    gap += c.lost_gap_ns;
    cpu_elapsed += c.elapsed_ns;
  }
  f.unknown_share = elapsed == 0 ? 0 : static_cast<double>(unknown) / static_cast<double>(elapsed);
  f.lost_gap_share =
      cpu_elapsed == 0 ? 0 : static_cast<double>(gap) / static_cast<double>(cpu_elapsed);
  return f;
}

TEST(AccountOverloadSweepTest, TruthLiesWithinReportedPlusUnknownAtEveryBufferSize) {
  std::printf(
      "| pages/CPU | seed | lost records | lost-gap share | unknown share | untouched vCPUs | "
      "their largest error |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (uint32_t pages : {1u, 2u, 8u, 32u}) {
    for (uint64_t seed : {11u, 12u, 13u}) {
      const SweepFigures f = RunSweepPoint(pages, seed);
      std::printf("| %u | %lu | %lu | %.1f %% | %.1f %% | %lu | %.3f %% |\n", pages,
                  static_cast<unsigned long>(seed), static_cast<unsigned long>(f.lost_records),
                  100 * f.lost_gap_share, 100 * f.unknown_share,
                  static_cast<unsigned long>(f.untouched), 100 * f.untouched_error);
      EXPECT_EQ(f.violations, 0u) << "pages " << pages << " seed " << seed;
      EXPECT_GT(f.compared, 400u);
      EXPECT_LE(f.untouched_error, 0.001) << "pages " << pages << " seed " << seed;
    }
  }
}

}  // namespace
