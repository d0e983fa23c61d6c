// The drain loop's test fixture: a fake hypervisor, time as a ManualScheduler, the io_context
// polled, nothing sleeps. Shared by loop_test.cc (draining, loss, capture, signals) and
// loop_exit_test.cc (hostile ring memory, masks given back, latency from the wake).
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "fake_hypervisor.h"
#include "tracefmt/clock.h"
#include "tracefmt/events.h"
#include "tracefmt/trace_file.h"
#include "xenbaked/daemon.h"
#include "xenbaked/drain_loop.h"
#include "xenbaked/signals.h"

namespace xenbaked {
namespace loop_testing {

using testing::FakeHypervisor;
constexpr uint64_t kBackstopNs = 100'000'000;
constexpr uint32_t kEvent = tracefmt::ev::kWake;

class CollectingSink final : public MergedRecordSink {
 public:
  void Add(const tracefmt::MergedRecord& m) override { records.push_back(m); }
  size_t CountOn(uint32_t cpu) const {
    size_t n = 0;
    for (const auto& m : records) n += m.cpu == cpu;
    return n;
  }
  std::vector<tracefmt::MergedRecord> records;
};

class DrainLoopTest : public ::testing::Test {
 protected:
  explicit DrainLoopTest(std::vector<uint32_t> cpus = {0, 1}, uint32_t pages = 2)
      : hv_(std::move(cpus), pages), log_(LogLevel::kDebug, [this](LogLevel, std::string_view l) {
          log_lines_.emplace_back(l);
          if (on_log_) on_log_();
        }) {}

  void StartLoop(const std::function<void(DrainLoopOptions&)>& configure = nullptr) {
    ASSERT_TRUE(TryStart(configure).ok());
    Poll();
  }
  tracefmt::Status TryStart(const std::function<void(DrainLoopOptions&)>& configure,
                            const std::function<void(TraceSetup&)>& configure_setup = nullptr) {
    DrainLoopOptions options;
    options.backstop_ns = kBackstopNs;
    if (configure) configure(options);
    loop_ = std::make_unique<DrainLoop>(io_, sched_, hv_, sink_, log_, options);
    TraceSetup setup;
    setup.pages_per_cpu = 2;
    if (configure_setup) configure_setup(setup);
    return loop_->Start(setup, *hv_.GetPhysInfo());
  }
  void Poll() {
    io_.restart();
    io_.poll();
  }
  // Writes `n` 16-byte records (TSC + 1 word) on ring `index`, TSCs from `tsc` in steps of `step`.
  uint64_t Fill(size_t index, size_t n, uint64_t tsc, uint64_t step = 10) {
    for (size_t i = 0; i < n; ++i, tsc += step)
      EXPECT_TRUE(hv_.Write(index, kEvent, tsc, {static_cast<uint32_t>(i)}));
    return tsc;
  }

  boost::asio::io_context io_;
  ManualScheduler sched_;
  FakeHypervisor hv_;
  std::vector<std::string> log_lines_;
  std::function<void()> on_log_;  // runs inside the loop whenever it logs (mid-pass, too)
  Logger log_;
  CollectingSink sink_;
  std::unique_ptr<DrainLoop> loop_;
};

// 2 pages: data_size 8184, half = 4092 bytes = 256 records of 16 bytes (rounded up).
constexpr size_t kRecordsToHalf = (8184 / 2 + 15) / 16;

// A private directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/xenbaked-loop-XXXXXX";
    path_ = ::mkdtemp(templ);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace loop_testing
}  // namespace xenbaked
