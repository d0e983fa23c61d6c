// CPUs that come online after the trace buffers were allocated: Xen gives them no buffer and
// drops their records without counting them. The daemon must say so — in its log, in the health
// it publishes, and in the live table — and say so again when the set changes.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "../../unit/xenbaked/fake_hypervisor.h"
#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/live_table.h"
#include "xenbaked/publisher.h"
#include "xenbaked/simulated_hypervisor.h"

namespace xenbaked {
namespace {

constexpr uint64_t kStepNs = 10'000'000;

// Keeps what the daemon handed to its publishers.
class RecordingPublisher final : public Publisher {
 public:
  std::string_view name() const override { return "recording"; }
  tracefmt::Status Publish(const publish::PublishView& view) override {
    health.push_back(view.health);
    return {};
  }
  tracefmt::Status Close(const publish::PublishView& view) override { return Publish(view); }
  std::vector<DaemonHealth> health;
};

struct Logged {
  LogLevel level;
  std::string text;
};

class CpuCoverageTest : public ::testing::Test {
 protected:
  // The hypervisor (and the host behind it) outlives the daemon: TearDown's final drain reads it.
  void Start(std::unique_ptr<Hypervisor> hv, std::function<void()> step_host) {
    hv_ = std::move(hv);
    Hypervisor& hv_ref = *hv_;
    step_host_ = std::move(step_host);
    DaemonOptions options;
    options.pages_per_cpu = 4;
    options.interval_ms = 1000;
    daemon_ = std::make_unique<Daemon>(io_, scheduler_, hv_ref, options, log_);
    auto publisher = std::make_unique<RecordingPublisher>();
    published_ = publisher.get();
    daemon_->AddPublisher(std::move(publisher));
    ASSERT_TRUE(daemon_->Start());
  }
  void TearDown() override {
    if (daemon_) daemon_->Stop();
    io_.restart();
    io_.poll();
  }
  void StepSeconds(uint64_t s) {
    for (uint64_t t = 0; t < s * 1'000'000'000; t += kStepNs) {
      if (step_host_) step_host_();
      scheduler_.Advance(kStepNs);
      io_.restart();
      io_.poll();
    }
  }
  size_t Warnings(const std::string& needle) const {
    size_t n = 0;
    for (const Logged& l : logged_)
      if (l.level == LogLevel::kWarning && l.text.find(needle) != std::string::npos) ++n;
    return n;
  }

  std::vector<Logged> logged_;
  Logger log_{LogLevel::kDebug, Logger::Sink([this](LogLevel level, std::string_view text) {
                logged_.push_back({level, std::string(text)});
              })};
  boost::asio::io_context io_;
  ManualScheduler scheduler_;
  std::unique_ptr<simulator::SimulatedHost> host_;
  std::unique_ptr<Hypervisor> hv_;
  std::unique_ptr<Daemon> daemon_;
  RecordingPublisher* published_ = nullptr;
  std::function<void()> step_host_;
};

TEST_F(CpuCoverageTest, ACpuOnlineAfterTheBuffersIsReportedUntracedOnce) {
  simulator::HostConfig config;
  config.workload.cpu_ids = {0, 1};
  config.offline_cpu_ids = {2, 3};
  config.workload.domains = 3;
  auto created = simulator::SimulatedHost::Create(config);
  ASSERT_TRUE(created) << created.error().Describe();
  host_ = std::move(*created);
  simulator::SimulatedHost& host = *host_;
  Start(std::make_unique<SimulatedHypervisor>(host), [&host] { host.Advance(kStepNs); });

  StepSeconds(2);
  ASSERT_FALSE(published_->health.empty());
  EXPECT_TRUE(published_->health.back().online_cpus_known);
  EXPECT_TRUE(published_->health.back().untraced_cpus.empty())
      << "offline CPUs without a buffer are not a loss";
  EXPECT_EQ(Warnings("without a trace buffer"), 0u);

  ASSERT_TRUE(host.BringCpuOnline(3));
  EXPECT_EQ(host.physinfo().nr_cpus, 3u);
  StepSeconds(3);
  EXPECT_EQ(published_->health.back().untraced_cpus, std::vector<uint32_t>{3});
  EXPECT_EQ(Warnings("CPU(s) 3 online without a trace buffer"), 1u) << "once per change";

  ASSERT_TRUE(host.BringCpuOnline(2));
  StepSeconds(1);
  EXPECT_EQ(published_->health.back().untraced_cpus, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(Warnings("CPU(s) 2,3 online without a trace buffer"), 1u);

  const std::string table = RenderLiveTable(nullptr, daemon_->totals(), published_->health.back(),
                                            {}, {.columns = 120, .rows = 10});
  EXPECT_NE(table.find("CPU(s) 2,3 online without a trace buffer"), std::string::npos) << table;
}

TEST_F(CpuCoverageTest, OnlyOnlineCpusThatLackARingAreUntraced) {
  auto fake = std::make_unique<testing::FakeHypervisor>(std::vector<uint32_t>{0, 1, 4}, 4);
  testing::FakeHypervisor& hv = *fake;
  hv.online_later = {2, 5};
  Start(std::move(fake), {});
  StepSeconds(1);
  ASSERT_FALSE(published_->health.empty());
  EXPECT_EQ(published_->health.back().untraced_cpus, (std::vector<uint32_t>{2, 5}));
  EXPECT_EQ(Warnings("CPU(s) 2,5 online without a trace buffer"), 1u);

  hv.online_later.clear();  // both went offline again
  StepSeconds(1);
  EXPECT_TRUE(published_->health.back().untraced_cpus.empty());
  bool cleared = false;
  for (const Logged& l : logged_)
    cleared |= l.text.find("every online CPU has a trace buffer again") != std::string::npos;
  EXPECT_TRUE(cleared);
}

TEST_F(CpuCoverageTest, AHypervisorThatCannotListCpusIsSaidOnceAndNotCalledCovered) {
  auto fake = std::make_unique<testing::FakeHypervisor>(std::vector<uint32_t>{0, 1}, 4);
  fake->online_error = "no getcpuinfo here";
  Start(std::move(fake), {});
  StepSeconds(3);
  ASSERT_FALSE(published_->health.empty());
  EXPECT_FALSE(published_->health.back().online_cpus_known);
  size_t said = 0;
  for (const Logged& l : logged_) said += l.text.find("no getcpuinfo here") != std::string::npos;
  EXPECT_EQ(said, 1u);
}

}  // namespace
}  // namespace xenbaked
