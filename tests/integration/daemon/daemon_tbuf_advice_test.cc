// The trace buffer size advice in the daemon: a simulated host whose buffers are too small for
// its load (the simulator's truth says records were dropped) gets a recommendation of more pages
// than it has, in the published health and in one warning that names Xen's boot option; a host
// whose buffers suffice gets no warning. Time is stepped; nothing sleeps.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/publisher.h"
#include "xenbaked/simulated_hypervisor.h"

namespace xenbaked {
namespace {

constexpr uint64_t kStepNs = 10'000'000;

class HealthPublisher final : public Publisher {
 public:
  std::string_view name() const override { return "health"; }
  tracefmt::Status Publish(const publish::PublishView& view) override {
    health = view.health;
    return {};
  }
  tracefmt::Status Close(const publish::PublishView& view) override { return Publish(view); }
  DaemonHealth health;
};

struct AdviceRun {
  DaemonHealth health;
  uint64_t dropped = 0;  // the simulator's truth
  std::vector<std::string> warnings;
};

AdviceRun RunHost(double hypercall_hz, uint32_t pages, uint64_t seconds) {
  simulator::HostConfig config;
  config.workload.cpu_ids = {0, 1};
  config.workload.domains = 4;
  config.workload.vcpus_per_domain = 2;
  config.workload.busy_fraction = 1.0;
  config.workload.hypercall_hz = hypercall_hz;
  auto host = simulator::SimulatedHost::Create(config);
  EXPECT_TRUE(host.ok()) << host.error().Describe();
  AdviceRun run;
  {
    SimulatedHypervisor hv(**host);
    boost::asio::io_context io;
    ManualScheduler scheduler;
    Logger log(LogLevel::kWarning, Logger::Sink([&run](LogLevel level, std::string_view text) {
                 if (level == LogLevel::kWarning) run.warnings.emplace_back(text);
               }));
    DaemonOptions options;
    options.pages_per_cpu = pages;
    options.interval_ms = 1000;
    options.event_mask = "all";  // hypercall records too: they make the load
    Daemon daemon(io, scheduler, hv, options, log);
    auto publisher = std::make_unique<HealthPublisher>();
    HealthPublisher* published = publisher.get();
    daemon.AddPublisher(std::move(publisher));
    EXPECT_TRUE(daemon.Start());
    for (uint64_t t = 0; t < seconds * 1'000'000'000; t += kStepNs) {
      (*host)->Advance(kStepNs);
      scheduler.Advance(kStepNs);
      io.restart();
      io.poll();
    }
    run.health = published->health;
    daemon.Stop();
    io.restart();
    io.poll();
  }
  run.dropped = (*host)->TruthSnapshot().TotalDropped();
  return run;
}

size_t Count(const std::vector<std::string>& lines, const std::string& needle) {
  size_t n = 0;
  for (const std::string& l : lines) n += l.find(needle) != std::string::npos;
  return n;
}

TEST(DaemonTbufAdvice, AnOverloadedHostIsAdvisedMorePagesOnce) {
  AdviceRun run = RunHost(/*hypercall_hz=*/400'000, /*pages=*/2, /*seconds=*/8);
  ASSERT_GT(run.dropped, 0u) << "the load should overflow 2 pages";
  const TbufAdvice& a = run.health.tbuf_advice;
  ASSERT_TRUE(a.ready);
  EXPECT_EQ(a.current_pages, 2u);
  EXPECT_GT(a.recommended_pages, a.current_pages);
  EXPECT_TRUE(a.loss_seen);
  EXPECT_GT(a.peak_bytes_per_s, 0.0);
  const std::string option = "tbuf_size=" + std::to_string(a.recommended_pages);
  EXPECT_EQ(Count(run.warnings, option), 1u) << "one line, rate-limited, naming Xen's option";
}

TEST(DaemonTbufAdvice, ABufferThatSufficesIsNotWarnedAbout) {
  AdviceRun run = RunHost(/*hypercall_hz=*/2000, /*pages=*/64, /*seconds=*/7);
  ASSERT_EQ(run.dropped, 0u);
  const TbufAdvice& a = run.health.tbuf_advice;
  ASSERT_TRUE(a.ready);
  EXPECT_FALSE(a.loss_seen);
  EXPECT_LE(a.recommended_pages, a.current_pages);
  EXPECT_EQ(Count(run.warnings, "tbuf_size="), 0u);
}

TEST(DaemonTbufAdvice, NoAdviceBeforeEnoughIntervals) {
  AdviceRun run = RunHost(/*hypercall_hz=*/2000, /*pages=*/8, /*seconds=*/3);
  EXPECT_FALSE(run.health.tbuf_advice.ready);
}

}  // namespace
}  // namespace xenbaked
