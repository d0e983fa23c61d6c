// The daemon's state stays bounded under domain churn and id reuse: after tens of thousands of
// creations and destructions (more than Xen's 32,768 domain ids, so ids come round again), the
// engine holds slots for the domains held at once (alive, or destroyed since the last
// publication), not for every id ever seen, and the window history holds `history` windows of
// the domains of their own time. Deterministic: the simulated host and the daemon's clock are
// stepped together; no timing is measured.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <map>

#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/simulated_hypervisor.h"

namespace xenbaked {
namespace {

constexpr uint64_t kStepNs = 10'000'000;  // 10 ms of simulated time per step
constexpr uint64_t kIntervalMs = 100;     // publication interval: destroyed domains go then
constexpr uint64_t kSeconds = 40;         // 40,000 creations at 1,000/s
constexpr uint32_t kVcpus = 2;
constexpr uint32_t kCpus = 2;
constexpr uint32_t kHistory = 3;

size_t Dead(const simulator::Truth& t) {
  return static_cast<size_t>(
      std::count_if(t.domains.begin(), t.domains.end(),
                    [](const simulator::DomainTruth& d) { return !d.alive; }));
}

TEST(DaemonMemory, EngineAndWindowStateStayBoundedUnderChurnAndIdReuse) {
  simulator::HostConfig config;
  config.workload.cpu_ids.clear();
  for (uint32_t cpu = 0; cpu < kCpus; ++cpu) config.workload.cpu_ids.push_back(cpu);
  config.workload.domains = 4;
  config.workload.vcpus_per_domain = kVcpus;
  config.workload.seed = 9;
  config.workload.churn_hz = 1000;
  config.workload.mean_lifetime_ns = 20'000'000;
  config.workload.first_new_domid = 0x7fe8;  // the rover wraps early: ids come round again
  auto host = simulator::SimulatedHost::Create(config);
  ASSERT_TRUE(host) << host.error().Describe();
  SimulatedHypervisor hv(**host);
  boost::asio::io_context io;
  ManualScheduler scheduler;
  Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
  DaemonOptions options;
  options.pages_per_cpu = 16;
  options.interval_ms = kIntervalMs;
  options.windows_s = {1};
  options.history = kHistory;
  options.initial_contents = InitialContents::kAccount;
  Daemon daemon(io, scheduler, hv, options, log);
  ASSERT_TRUE(daemon.Start());

  // From the simulator's truth: the most domains alive at once, and the most destroyed within
  // one publication interval and within one window (what the daemon may hold on top).
  size_t peak_live = 0;
  size_t most_dead_per_interval = 0;
  size_t most_dead_per_window = 0;
  size_t dead_at_interval = 0;
  size_t dead_at_window = 0;
  // What the daemon held, sampled after every step.
  EngineStateSizes peak_engine;
  size_t peak_window_domains = 0;  // over all kept windows
  size_t peak_totals_domains = 0;
  size_t most_windows = 0;
  for (uint64_t t = kStepNs; t <= kSeconds * 1'000'000'000; t += kStepNs) {
    (*host)->Advance(kStepNs);
    scheduler.Advance(kStepNs);
    io.restart();
    io.poll();
    peak_live = std::max(peak_live, (*host)->Domains().size() + 1);  // + the idle domain
    if (t % (kIntervalMs * 1'000'000) == 0) {
      const size_t dead = Dead((*host)->TruthSnapshot());
      most_dead_per_interval = std::max(most_dead_per_interval, dead - dead_at_interval);
      dead_at_interval = dead;
      if (t % 1'000'000'000 == 0) {
        most_dead_per_window = std::max(most_dead_per_window, dead - dead_at_window);
        dead_at_window = dead;
      }
    }
    const EngineStateSizes e = daemon.engine().StateSizes();
    peak_engine.domain_slots = std::max(peak_engine.domain_slots, e.domain_slots);
    peak_engine.domains_held = std::max(peak_engine.domains_held, e.domains_held);
    peak_engine.vcpu_states = std::max(peak_engine.vcpu_states, e.vcpu_states);
    size_t window_domains = 0;
    for (const Window& w : daemon.windows().windows(0)) window_domains += w.delta.domains.size();
    peak_window_domains = std::max(peak_window_domains, window_domains);
    peak_totals_domains = std::max(peak_totals_domains, daemon.windows().totals().domains.size());
    most_windows = std::max(most_windows, daemon.windows().windows(0).size());
  }
  daemon.Stop();

  const simulator::Truth truth = (*host)->TruthSnapshot();
  std::map<uint32_t, int> incarnations;
  for (const simulator::DomainTruth& d : truth.domains) ++incarnations[d.id];
  const int most_incarnations =
      std::max_element(incarnations.begin(), incarnations.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      })->second;
  ASSERT_GT(Dead(truth), 32768u) << "more creations than domain ids";
  ASSERT_GE(most_incarnations, 2) << "ids were reused";
  ASSERT_EQ(daemon.loop().health().lost_records, 0u);

  // Held at once: alive, plus destroyed since the last publication (twice that for the records
  // in flight between the simulator's truth and the engine's view).
  const size_t held_bound = 2 * (peak_live + most_dead_per_interval);
  EXPECT_LE(peak_engine.domain_slots, held_bound)
      << "peak live " << peak_live << ", destroyed per interval " << most_dead_per_interval;
  EXPECT_LE(peak_engine.domains_held, held_bound);
  EXPECT_LE(peak_totals_domains, held_bound);
  // One vCPU state per vCPU of a held domain (the idle domain has one per CPU).
  EXPECT_LE(peak_engine.vcpu_states, peak_engine.domain_slots * std::max(kVcpus, kCpus));
  // The history: `history` windows, each of the domains alive or destroyed in it.
  EXPECT_LE(most_windows, kHistory);
  EXPECT_LE(peak_window_domains, kHistory * 2 * (peak_live + most_dead_per_window))
      << "destroyed per window " << most_dead_per_window;
}

}  // namespace
}  // namespace xenbaked
