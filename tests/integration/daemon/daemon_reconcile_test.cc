// The daemon's reconciliation with the hypervisor's own clock, against the simulated host: the
// simulator answers each vCPU's cpu_time from its truth, independently of the trace, so the
// comparison checks the whole path (drain, merge, accounting, the reconciliation's arithmetic).
// Deterministic: the host and the daemon's clock are stepped together; nothing sleeps.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <memory>
#include <vector>

#include "sim_host_util.h"
#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/live_table.h"
#include "xenbaked/simulated_hypervisor.h"

namespace xenbaked {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kStepNs = 10 * kMs;

// Keeps every reconciliation the daemon publishes.
class ReconcileRecorder final : public Publisher {
 public:
  explicit ReconcileRecorder(std::vector<ReconcileReport>& out) : out_(out) {}
  std::string_view name() const override { return "reconcile recorder"; }
  tracefmt::Status Publish(const publish::PublishView& view) override {
    if (view.reconcile != nullptr && (out_.empty() || view.reconcile->reads > out_.back().reads))
      out_.push_back(*view.reconcile);
    return {};
  }
  tracefmt::Status Close(const publish::PublishView& view) override { return Publish(view); }

 private:
  std::vector<ReconcileReport>& out_;
};

struct DaemonRun {
  std::vector<ReconcileReport> reports;
  DaemonHealth health;
};

DaemonRun RunDaemon(const simulator::HostConfig& config, DaemonOptions options, uint64_t seconds) {
  DaemonRun run;
  auto host = simulator::SimulatedHost::Create(config);
  EXPECT_TRUE(host) << host.error().Describe();
  SimulatedHypervisor hv(**host);
  boost::asio::io_context io;
  ManualScheduler scheduler;
  Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
  options.initial_contents = InitialContents::kAccount;
  options.windows_s = {1};
  Daemon daemon(io, scheduler, hv, options, log);
  daemon.AddPublisher(std::make_unique<ReconcileRecorder>(run.reports));
  EXPECT_TRUE(daemon.Start());
  for (uint64_t t = 0; t < seconds * 1'000'000'000; t += kStepNs) {
    simtest::Step(**host, scheduler, io, kStepNs);
  }
  daemon.Stop();
  run.health = daemon.loop().health();
  return run;
}

using simtest::SimConfig;

// On a clean run every period is explained, and over the whole run the trace and Xen agree to
// within the lag at its two ends: at most one credit2 slice (10 ms) plus one simulation step
// (10 ms) per CPU, 80 ms on 4 CPUs — 0.2 % of the ~40 CPU-seconds compared.
TEST(DaemonReconcile, ACleanRunAgreesWithXensCpuTimeWithinTheReadLag) {
  DaemonOptions options;
  options.pages_per_cpu = 32;
  options.interval_ms = 100;
  options.reconcile_interval_ms = 500;
  const DaemonRun run = RunDaemon(SimConfig(4, 8, 2), options, 10);
  ASSERT_EQ(run.health.lost_records, 0u);
  ASSERT_GE(run.reports.size(), 18u);  // one read each 500 ms, and the final one
  const ReconcileReport& last = run.reports.back();
  EXPECT_EQ(last.vcpus_read, 8u * 2);
  EXPECT_TRUE(last.read_tsc_known);
  EXPECT_EQ(last.unexplained_periods, 0u);
  EXPECT_EQ(last.resets, 0u);
  for (const ReconcileReport& r : run.reports) {
    for (const DomainReconcile& d : r.domains) {
      EXPECT_TRUE(d.explained()) << "read " << r.reads << " domain " << d.domid << ": error "
                                 << d.error_ns() << " ns, bound -" << d.bound_below_ns() << "/+"
                                 << d.bound_above_ns();
      EXPECT_EQ(d.unknown_ns, 0u);
    }
  }
  // Over the run (from the first read each vCPU was known to the trace to the last).
  EXPECT_GT(last.host.xen_cpu_total_ns, 30'000 * kMs);  // 4 CPUs busy most of ~10 s
  const int64_t drift = static_cast<int64_t>(last.host.xen_cpu_total_ns) -
                        static_cast<int64_t>(last.host.trace_running_total_ns);
  EXPECT_LE(std::llabs(drift), static_cast<long long>(80 * kMs))
      << "Xen " << last.host.xen_cpu_total_ns << " trace " << last.host.trace_running_total_ns;
}

// Under loss, Xen's figure for each domain lies within [running, running + unknown], widened by
// the read lag at the period's two ends: loss shows as unknown time, not as drift. One more
// allowance, the simulator's own: during a burst its trace clock runs ahead of the truth's by up
// to the burst's records × kRecordTicks (20,000 × 200 ticks = 1.54 ms at 2.6 GHz), on every CPU
// (one tick counter for the host), so each vCPU running across a burst shows up to that much
// more in the trace than in the truth.
TEST(DaemonReconcile, UnderLossXensCpuTimeLiesWithinRunningPlusUnknown) {
  simulator::HostConfig c = SimConfig(2, 4, 2);
  c.workload.burst_interval_ns = 50 * kMs;
  c.workload.burst_records = 20000;
  DaemonOptions options;
  options.pages_per_cpu = 2;
  options.backstop_ms = 1000;  // slow: bursts overflow the small buffers
  options.event_mask = "all";  // the bursts are hypercall records
  options.interval_ms = 100;
  options.reconcile_interval_ms = 300;
  const DaemonRun run = RunDaemon(c, options, 6);
  const uint64_t clock_lead_ns =
      c.workload.burst_records * simulator::kRecordTicks * 1'000'000 / c.workload.cpu_khz;
  ASSERT_GT(run.health.lost_records, 0u);
  uint64_t unknown = 0;
  size_t compared = 0;
  for (const ReconcileReport& r : run.reports) {
    for (const DomainReconcile& d : r.domains) {
      ++compared;
      unknown += d.unknown_ns;
      const int64_t lo = static_cast<int64_t>(d.trace_running_ns) -
                         static_cast<int64_t>(d.bound_below_ns() + clock_lead_ns * d.vcpus);
      const int64_t hi =
          static_cast<int64_t>(d.trace_running_ns + d.bound_above_ns() + clock_lead_ns * d.vcpus);
      const auto xen = static_cast<int64_t>(d.xen_cpu_ns);
      EXPECT_GE(xen, lo) << "read " << r.reads << " domain " << d.domid;
      EXPECT_LE(xen, hi) << "read " << r.reads << " domain " << d.domid << ": unknown "
                         << d.unknown_ns << ", lag " << d.lag_after_ns;
    }
  }
  EXPECT_GE(compared, 4u * 15);
  EXPECT_GT(unknown, 0u) << "the loss must have hidden some running time";
}

TEST(DaemonReconcile, TheLiveTableShowsTheHostsLastPeriod) {
  ReconcileReport r;
  r.period_ns = 1'000'000'000;
  r.host.vcpus = 8;
  r.host.trace_running_ns = 3'990'000'000;
  r.host.xen_cpu_ns = 4'000'000'000;
  r.unexplained_periods = 1;
  const std::string table =
      RenderLiveTable(nullptr, {}, {}, {}, LiveTableSize{.columns = 200, .rows = 10}, &r);
  EXPECT_NE(table.find("vs Xen's cpu_time: +10.000 ms over 1.0 s on 8 vCPUs"), std::string::npos)
      << table;
  EXPECT_NE(table.find("1 unexplained period(s)"), std::string::npos) << table;
  EXPECT_EQ(RenderLiveTable(nullptr, {}, {}, {}, LiveTableSize{.columns = 200, .rows = 10})
                .find("cpu_time"),
            std::string::npos);
}

TEST(DaemonReconcile, ZeroIntervalDisablesIt) {
  DaemonOptions options;
  options.interval_ms = 100;
  options.reconcile_interval_ms = 0;
  const DaemonRun run = RunDaemon(SimConfig(2, 2, 1), options, 1);
  EXPECT_TRUE(run.reports.empty());
}

}  // namespace
}  // namespace xenbaked
