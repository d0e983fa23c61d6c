// The accounting log as the daemon writes it, read back by xenbake-report: runs of the daemon
// restarting into one log, loss before start apart from loss during the run, write failures in
// the health report and the metrics, and a damaged log moved aside with a warning. The daemon
// runs against an in-process simulated host stepped deterministically; nothing sleeps.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "../../unit/publish/fake_host.h"
#include "report/report_format.h"
#include "report/report_model.h"
#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/publish/metrics.h"
#include "xenbaked/publishers.h"
#include "xenbaked/simulated_hypervisor.h"

namespace xenbaked {
namespace {

using publish::testing::FileSizeLimit;
using publish::testing::TempDir;
constexpr uint64_t kStepNs = 10'000'000;  // 10 ms of simulated time per step
constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint32_t kCpus = 2;
constexpr uint32_t kVcpus = 2;

// A publisher after the log that keeps what each publication hands it, as the socket API and
// the metrics endpoint get it.
class Recorder final : public Publisher {
 public:
  struct Seen {
    std::vector<DaemonHealth> health;
    std::string metrics;  // the newest
  };
  explicit Recorder(Seen& seen) : seen_(seen) {}
  std::string_view name() const override { return "recorder"; }
  tracefmt::Status Publish(const publish::PublishView& v) override {
    seen_.health.push_back(v.health);
    seen_.metrics = publish::RenderMetrics(v);
    return {};
  }
  tracefmt::Status Close(const publish::PublishView& v) override { return Publish(v); }

 private:
  Seen& seen_;
};

// One daemon run with its accounting log in `log_dir`, on a simulated host of its own (a
// restarted daemon sees its engine time start at 0 again), its wall clock starting at
// `unix_start_ns`. Log lines are kept.
class SimRun {
 public:
  SimRun(const std::string& log_dir, uint64_t unix_start_ns,
         void (*configure)(simulator::HostConfig&) = nullptr, Recorder::Seen* seen = nullptr)
      : scheduler_(/*start_ns=*/kSecond, unix_start_ns) {
    simulator::HostConfig config;
    config.workload.cpu_ids = {0, 1};
    config.workload.domains = 3;
    config.workload.vcpus_per_domain = kVcpus;
    config.workload.seed = 7;
    if (configure != nullptr) configure(config);
    auto host = simulator::SimulatedHost::Create(config);
    EXPECT_TRUE(host) << host.error().Describe();
    host_ = std::move(*host);
    hv_ = std::make_unique<SimulatedHypervisor>(*host_);
    options_.log_dir = log_dir;
    options_.pages_per_cpu = 8;
    options_.interval_ms = 1000;
    options_.windows_s = {1, 10};
    daemon_ = std::make_unique<Daemon>(io_, scheduler_, *hv_, options_, log_);
    auto endpoints = AddPublishers(*daemon_, io_, options_, *hv_->GetPhysInfo(), log_,
                                   [this] { return scheduler_.UnixNowNs(); });
    EXPECT_TRUE(endpoints) << endpoints.error().Describe();
    if (seen != nullptr) daemon_->AddPublisher(std::make_unique<Recorder>(*seen));
    started_ = endpoints && daemon_->Start();
    EXPECT_TRUE(started_);
  }
  ~SimRun() { Stop(); }

  void Seconds(double s) {
    for (uint64_t t = 0; started_ && t < static_cast<uint64_t>(s * 1e9); t += kStepNs) {
      host_->Advance(kStepNs);
      scheduler_.Advance(kStepNs);
      io_.restart();
      io_.poll();
    }
  }
  void Stop() {
    if (!daemon_) return;
    daemon_->Stop();
    io_.restart();
    io_.poll();
  }
  void PublishNow() { daemon_->PublishNow(); }
  const DrainLoop& loop() const { return daemon_->loop(); }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  boost::asio::io_context io_;
  ManualScheduler scheduler_;
  std::vector<std::string> warnings_;
  Logger log_{LogLevel::kWarning, Logger::Sink([this](LogLevel level, std::string_view line) {
                if (level == LogLevel::kWarning) warnings_.emplace_back(line);
              })};
  std::unique_ptr<simulator::SimulatedHost> host_;
  std::unique_ptr<SimulatedHypervisor> hv_;
  DaemonOptions options_;
  std::unique_ptr<Daemon> daemon_;
  bool started_ = false;
};

xenbake::report::Report ReportOf(const std::string& path) {
  auto contents = tracefmt::ReadAcctLogFile(path);
  EXPECT_TRUE(contents) << contents.error().Describe();
  xenbake::report::ReportBuilder builder({});
  if (contents) builder.AddLog(path, *contents);
  return builder.Build();
}

// Three runs of 5.5 s into one log directory, 20 s of wall clock apart: the report covers the
// time the daemons ran, and no domain runs more than its vCPUs can.
TEST(DaemonAccountingLog, ThreeRestartsIntoOneLogReportTheRealTimeCovered) {
  TempDir tmp;
  const uint64_t unix_start = 1'700'000'000 * kSecond;
  for (uint64_t run = 0; run < 3; ++run) {
    SimRun daemon(tmp.File("log"), unix_start + run * 20 * kSecond);
    daemon.Seconds(5.5);
  }
  const xenbake::report::Report r = ReportOf(tmp.File("log/accounting.log"));
  ASSERT_EQ(r.runs.size(), 3u) << xenbake::report::FormatTable(r);
  // Each run closes the 1 s windows ending at 1..5 s of its engine time (its first window
  // starts at its first record, a little after 0).
  EXPECT_GE(r.windows, 3u * 5u);
  EXPECT_GT(r.period_ns, 3 * 4 * kSecond);
  EXPECT_LE(r.period_ns, 3 * 5 * kSecond + kSecond);
  for (const xenbake::report::RunSummary& run : r.runs) EXPECT_TRUE(run.ended_cleanly);
  for (const xenbake::report::DomainTotalsRow& d : r.domains) {
    EXPECT_LE(xenbake::report::Percent(d.totals.running_ns, r.period_ns), kVcpus * 100.0 + 1e-6)
        << "domain " << d.domid << "\n"
        << xenbake::report::FormatTable(r);
  }
  // The CPUs' time is somebody's, idle included: kCpus × the time covered.
  uint64_t running = 0;
  for (const xenbake::report::DomainTotalsRow& d : r.domains) running += d.totals.running_ns;
  EXPECT_NEAR(static_cast<double>(running), static_cast<double>(kCpus * r.period_ns),
              0.01 * static_cast<double>(kCpus * r.period_ns));
}

// Buffers full since boot (tbuf_size= on Xen's command line): the first records report loss
// from before the daemon started. The report gives that loss and the loss during the run as the
// daemon counted them.
TEST(DaemonAccountingLog, TheReportsLossBeforeStartAndDuringTheRunAreTheDaemons) {
  TempDir tmp;
  uint64_t lost = 0;
  uint64_t lost_at_start = 0;
  {
    SimRun daemon(tmp.File("log"), 1'700'000'000 * kSecond, [](simulator::HostConfig& c) {
      c.boot_tbuf_pages = 8;
      c.boot_traced_ns = 2 * kSecond;
    });
    daemon.Seconds(3.5);
    daemon.Stop();
    lost = daemon.loop().health().lost_records;
    lost_at_start = daemon.loop().health().lost_records_at_start;
  }
  ASSERT_GT(lost_at_start, 0u) << "the simulated boot lost nothing: the test proves nothing";
  const xenbake::report::Report r = ReportOf(tmp.File("log/accounting.log"));
  EXPECT_TRUE(r.lost_at_start_known);
  EXPECT_EQ(r.lost_records_at_start, lost_at_start);
  EXPECT_EQ(r.lost_records_during_run, lost - lost_at_start);
  EXPECT_EQ(r.lost_records, lost);
}

TEST(DaemonAccountingLog, ADamagedLogIsMovedAsideWithAWarningNamingFileAndOffset) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.File("log"));
  const std::string path = tmp.File("log/accounting.log");
  std::ofstream(path) << "not an accounting log\n";
  SimRun daemon(tmp.File("log"), 1'700'000'000 * kSecond);
  bool warned = false;
  for (const std::string& line : daemon.warnings()) {
    warned = warned ||
             (line.find(path) != std::string::npos && line.find("byte 0") != std::string::npos &&
              line.find("moved aside to " + path + ".1") != std::string::npos);
  }
  EXPECT_TRUE(warned) << "warnings: " << ::testing::PrintToString(daemon.warnings());
  EXPECT_TRUE(std::filesystem::exists(path + ".1"));
}

TEST(DaemonAccountingLog, FailedLogWritesCountInTheHealthReportAndMetrics) {
  TempDir tmp;
  const std::string path = tmp.File("log/accounting.log");
  Recorder::Seen seen;
  SimRun daemon(tmp.File("log"), 1'700'000'000 * kSecond, nullptr, &seen);
  daemon.Seconds(1.5);
  ASSERT_FALSE(seen.health.empty());
  EXPECT_EQ(seen.health.back().publish_errors, 0u);
  {
    // Every write of the log fails, as on a full disk (root included).
    FileSizeLimit full(std::filesystem::file_size(path));
    daemon.Seconds(2);
  }
  // Each failed interval is one error, seen by the publishers after the log in that interval.
  EXPECT_GE(seen.health.back().publish_errors, 2u);
  EXPECT_NE(seen.metrics.find(
                fmt::format("xenbaked_publish_errors_total {}", seen.health.back().publish_errors)),
            std::string::npos)
      << seen.metrics;
  bool warned = false;
  for (const std::string& line : daemon.warnings())
    warned = warned || (line.starts_with("accounting log: ") &&
                        line.find("write to " + path) != std::string::npos);
  EXPECT_TRUE(warned) << ::testing::PrintToString(daemon.warnings());
  // The disk has room again: what was queued is written, nothing is lost.
  daemon.Seconds(1);
  daemon.Stop();
  auto contents = tracefmt::ReadAcctLogFile(path);
  ASSERT_TRUE(contents);
  EXPECT_FALSE(contents->stop.has_value());
}

}  // namespace
}  // namespace xenbaked
