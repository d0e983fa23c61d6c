// The drain loop against a fake hypervisor: time is a ManualScheduler, the io_context is polled,
// nothing sleeps.
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
namespace {

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

TEST_F(DrainLoopTest, InterruptWakesADrainOfEveryCpu) {
  StartLoop();
  Fill(1, 3, 1000);               // below half: no interrupt from CPU 1
  Fill(0, kRecordsToHalf, 1000);  // crosses half full: interrupt
  Poll();
  EXPECT_EQ(loop_->health().wakes_irq, 1u);
  EXPECT_EQ(loop_->health().wakes_timer, 0u);
  EXPECT_EQ(hv_.acks, 1);
  // Every CPU was drained on that wake, the quiet one too.
  EXPECT_EQ(hv_.ring(0).LoadCons(), hv_.ring(0).LoadProd());
  EXPECT_EQ(hv_.ring(1).LoadCons(), hv_.ring(1).LoadProd());
  loop_->Stop();
  EXPECT_EQ(sink_.CountOn(0), kRecordsToHalf);
  EXPECT_EQ(sink_.CountOn(1), 3u);
}

TEST_F(DrainLoopTest, BackstopDrainsACpuThatNeverReachesHalf) {
  StartLoop();
  Fill(1, 5, 1000);
  Poll();
  EXPECT_EQ(loop_->health().records, 0u);  // no interrupt, no timer yet
  EXPECT_NE(hv_.ring(1).LoadCons(), hv_.ring(1).LoadProd());
  sched_.Advance(kBackstopNs);
  Poll();
  EXPECT_EQ(loop_->health().wakes_timer, 1u);
  EXPECT_EQ(loop_->health().wakes_irq, 0u);
  EXPECT_EQ(hv_.ring(1).LoadCons(), hv_.ring(1).LoadProd());
  sched_.Advance(3 * kBackstopNs);
  EXPECT_EQ(loop_->SampleHealth().wakes_timer, 4u);
  EXPECT_EQ(loop_->health().records, 5u);
}

TEST_F(DrainLoopTest, PerPassBudgetKeepsOneBusyCpuFromStarvingTheOthers) {
  StartLoop([&](DrainLoopOptions& o) { o.budget_bytes_per_cpu = 1024; });
  Fill(0, 500, 1000);  // 8000 bytes on CPU 0
  Fill(1, 10, 1000);
  loop_->DrainNow();
  // One pass: CPU 0 gave at most its budget, CPU 1 everything.
  EXPECT_LE(loop_->health().cpus[0].bytes, 1024u);
  EXPECT_EQ(loop_->health().cpus[1].records, 10u);
  EXPECT_EQ(loop_->health().cpus[0].budget_hits, 1u);
  Poll();  // the re-posted passes (and the interrupt CPU 0 raised) finish the job
  EXPECT_EQ(hv_.ring(0).LoadCons(), hv_.ring(0).LoadProd());
  EXPECT_GE(loop_->health().wakes_repost + loop_->health().wakes_irq, 7u);
  loop_->Stop();
  EXPECT_EQ(sink_.records.size(), 510u);
  EXPECT_EQ(loop_->health().late_records, 0u);
}

TEST_F(DrainLoopTest, RecordsReachTheSinkMergedInTscOrder) {
  StartLoop([&](DrainLoopOptions& o) { o.budget_bytes_per_cpu = 256; });
  Fill(0, 200, 1000, 7);
  Fill(1, 200, 1003, 5);
  Poll();
  sched_.Advance(kBackstopNs);
  Poll();
  loop_->Stop();
  ASSERT_EQ(sink_.records.size(), 400u);
  for (size_t i = 1; i < sink_.records.size(); ++i)
    ASSERT_LE(sink_.records[i - 1].tsc, sink_.records[i].tsc) << i;
  EXPECT_EQ(loop_->health().late_records, 0u);
}

// dom0 is a guest: the daemon can be descheduled between two CPUs of one pass, and the CPU it
// drained first gets records meanwhile that are older than the next CPU's. Here the anomaly log
// line (written mid-pass, while CPU 1 is drained) stands for that moment.
TEST_F(DrainLoopTest, RecordsWrittenOnACpuWhileAnotherIsDrainedAreNotOvertaken) {
  StartLoop();
  Fill(0, 5, 100);  // 100..140
  Fill(1, 5, 200);  // 200..240, then a record cut short by prod: an anomaly, logged mid-pass
  const uint32_t prod = hv_.ring(1).LoadProd();
  ASSERT_TRUE(hv_.Write(1, kEvent, 250, {0}));
  hv_.SetProd(1, prod + 8);
  bool written = false;
  on_log_ = [&] {
    if (written) return;
    written = true;
    EXPECT_TRUE(hv_.Write(0, kEvent, 160, {0}));
  };
  loop_->DrainNow();
  on_log_ = nullptr;
  EXPECT_TRUE(written);
  EXPECT_EQ(loop_->health().cpus[1].anomalies, 1u);
  EXPECT_EQ(sink_.records.size(), 5u);  // CPU 0's first five; CPU 1's wait for CPU 0's 160
  loop_->DrainNow();
  loop_->Stop();
  EXPECT_EQ(loop_->health().late_records, 0u);
  ASSERT_EQ(sink_.records.size(), 11u);
  for (size_t i = 1; i < sink_.records.size(); ++i)
    EXPECT_LE(sink_.records[i - 1].tsc, sink_.records[i].tsc) << i;
}

TEST_F(DrainLoopTest, BogusProdIsCountedAndNeverFollowedThenDrainingRecovers) {
  StartLoop();
  Fill(0, 4, 1000);
  const uint32_t good_prod = hv_.ring(0).LoadProd();
  const uint32_t cons = hv_.ring(0).LoadCons();
  hv_.SetProd(0, good_prod + 2);  // misaligned
  loop_->DrainNow();
  EXPECT_EQ(loop_->health().cpus[0].anomalies, 1u);
  EXPECT_EQ(hv_.ring(0).LoadCons(), cons);  // nothing read, nothing published
  hv_.SetProd(0, 2 * hv_.data_size() + 8);  // out of range
  loop_->DrainNow();
  EXPECT_EQ(loop_->health().cpus[0].anomalies, 2u);
  hv_.SetProd(0, good_prod);
  loop_->DrainNow();
  EXPECT_EQ(loop_->SampleHealth().records, 4u);
  EXPECT_EQ(loop_->health().anomalies, 2u);
  EXPECT_FALSE(log_lines_.empty());
}

TEST_F(DrainLoopTest, BogusConsIsResynchronisedAtProd) {
  StartLoop();
  Fill(0, 4, 1000);
  hv_.ring(0).StoreCons(6);  // misaligned: the window is given up, cons reset to prod
  loop_->DrainNow();
  EXPECT_EQ(loop_->health().cpus[0].anomalies, 1u);
  EXPECT_EQ(hv_.ring(0).LoadCons(), hv_.ring(0).LoadProd());
  Fill(0, 3, 2000);
  loop_->DrainNow();
  EXPECT_EQ(loop_->health().cpus[0].records, 3u);
}

TEST_F(DrainLoopTest, AnomalyLogIsRateLimitedButEveryAnomalyCounted) {
  StartLoop([&](DrainLoopOptions& o) { o.anomaly_log_burst = 2; });
  Fill(0, 1, 1000);
  hv_.SetProd(0, 3);
  for (int i = 0; i < 10; ++i) loop_->DrainNow();
  EXPECT_EQ(loop_->SampleHealth().anomalies, 10u);
  EXPECT_EQ(loop_->health().anomalies_logged, 2u);
}

TEST_F(DrainLoopTest, InitialContentsDiscarded) {
  Fill(0, 20, 1000);
  Fill(1, 30, 1000);
  StartLoop([&](DrainLoopOptions& o) { o.initial_contents = InitialContents::kDiscard; });
  EXPECT_EQ(loop_->health().initial_bytes_discarded, 50u * 16);
  Fill(0, 2, 5000);
  loop_->Stop();
  EXPECT_EQ(sink_.records.size(), 2u);
}

TEST_F(DrainLoopTest, InitialContentsAccounted) {
  Fill(0, 20, 1000);
  Fill(1, 30, 1000);
  StartLoop([&](DrainLoopOptions& o) { o.initial_contents = InitialContents::kAccount; });
  EXPECT_EQ(loop_->health().initial_bytes_discarded, 0u);
  loop_->Stop();
  EXPECT_EQ(sink_.records.size(), 50u);
}

TEST_F(DrainLoopTest, LostRecordsAreCountedFromTheRecordsThatReportThem) {
  StartLoop();
  hv_.Write(0, tracefmt::ev::kLostRecords, 1000, {17, 0, 0, 0});
  hv_.Write(1, tracefmt::ev::kLostRecords, 1000, {5, 0, 0, 0});
  loop_->DrainNow();
  EXPECT_EQ(loop_->SampleHealth().lost_records, 22u);
  EXPECT_EQ(loop_->health().cpus[0].lost_records, 17u);
}

// On real Xen with tbuf_size= the buffers are full from boot: the first record the hypervisor
// writes after the daemon made room reports everything lost until then. That loss is the
// daemon's start, not its run, and is reported apart.
TEST_F(DrainLoopTest, LossBeforeStartIsReportedApartFromLossDuringTheRun) {
  Fill(0, 20, 1000);
  StartLoop([&](DrainLoopOptions& o) { o.initial_contents = InitialContents::kDiscard; });
  hv_.Write(0, tracefmt::ev::kLostRecords, 2000, {1000, 0, 0, 0});
  Fill(0, 5, 2100);
  Fill(1, 5, 2100);
  loop_->DrainNow();
  EXPECT_EQ(loop_->SampleHealth().lost_records, 1000u);
  EXPECT_EQ(loop_->health().lost_records_at_start, 1000u);
  // Later loss on either CPU is loss during the run, even on a CPU that reports it first.
  hv_.Write(0, tracefmt::ev::kLostRecords, 3000, {7, 0, 0, 0});
  hv_.Write(1, tracefmt::ev::kLostRecords, 3000, {4, 0, 0, 0});
  loop_->DrainNow();
  EXPECT_EQ(loop_->SampleHealth().lost_records, 1011u);
  EXPECT_EQ(loop_->health().lost_records_at_start, 1000u);
  EXPECT_EQ(loop_->health().cpus[0].lost_records_at_start, 1000u);
  EXPECT_EQ(loop_->health().cpus[1].lost_records_at_start, 0u);
}

TEST_F(DrainLoopTest, LossInAccountedInitialContentsAndRightAfterThemIsBeforeStart) {
  hv_.Write(0, tracefmt::ev::kLostRecords, 900, {3, 0, 0, 0});
  Fill(0, 10, 1000);
  StartLoop([&](DrainLoopOptions& o) { o.initial_contents = InitialContents::kAccount; });
  hv_.Write(0, tracefmt::ev::kLostRecords, 2000, {500, 0, 0, 0});
  Fill(0, 3, 2100);
  hv_.Write(0, tracefmt::ev::kLostRecords, 3000, {9, 0, 0, 0});
  loop_->DrainNow();
  EXPECT_EQ(loop_->SampleHealth().lost_records, 512u);
  EXPECT_EQ(loop_->health().lost_records_at_start, 503u);
}

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

TEST_F(DrainLoopTest, RawCaptureRoundTripsThroughTheReader) {
  TempDir dir;
  const std::string path = dir / "capture.xentrace";
  StartLoop([&](DrainLoopOptions& o) {
    o.budget_bytes_per_cpu = 512;
    o.capture_path = path;
  });
  // Enough to wrap CPU 0's ring twice, so wrapped windows and WRAP records are in the capture.
  std::map<uint32_t, std::vector<tracefmt::Record>> written;
  uint64_t tsc = 1000;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 250; ++i, tsc += 3) {
      ASSERT_TRUE(hv_.Write(0, kEvent, tsc, {1, 2, 3, 4}));  // 28 bytes: 8184 % 28 != 0
      if (i % 10 == 0) {
        ASSERT_TRUE(hv_.Write(1, kEvent, tsc, {4}));
      }
    }
    Poll();
    sched_.Advance(kBackstopNs);
    Poll();
  }
  loop_->Stop();
  EXPECT_EQ(loop_->health().capture_errors, 0u);

  auto reader = tracefmt::TraceFileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().Describe();
  std::map<uint32_t, uint64_t> records, non_wrap;
  tracefmt::Chunk chunk;
  while (reader->Next(chunk)) {
    tracefmt::RecordCursor cur(chunk.bytes);
    tracefmt::Record rec;
    while (cur.Next(rec)) {
      ++records[chunk.cpu];
      non_wrap[chunk.cpu] += rec.event != tracefmt::ev::kWrapBuffer;
    }
    EXPECT_TRUE(cur.AtEnd());
  }
  EXPECT_FALSE(reader->error().has_value());
  EXPECT_EQ(non_wrap[0], 1500u);
  EXPECT_EQ(non_wrap[1], 150u);
  EXPECT_EQ(records[0] + records[1], loop_->health().records);
  EXPECT_GT(records[0], non_wrap[0]);  // the WRAP padding is captured as the ring had it
  auto meta = tracefmt::ReadCaptureMeta(path);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->cpu_khz, 1'000'000u);
  EXPECT_EQ(meta->tbuf_pages, 2u);
}

TEST_F(DrainLoopTest, FullDiskCaptureErrorsAreCountedAndDrainingGoesOn) {
  TempDir dir;
  const std::string path = dir / "capture.xentrace";
  StartLoop([&](DrainLoopOptions& o) { o.capture_path = path; });
  // From here every write to the capture fails as on a full disk: a file size limit of 0 bytes
  // (SIGXFSZ ignored, so the write returns EFBIG). The capture is never written through a link
  // (to /dev/full, say), so the limit stands in for the device.
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit no_growth = old_limit;
  no_growth.rlim_cur = 0;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &no_growth), 0);
  Fill(0, 10, 1000);
  Fill(1, 10, 1000);
  loop_->DrainNow();
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(loop_->health().capture_errors, 2u);
  EXPECT_EQ(loop_->health().capture_chunks_lost, 2u);
  EXPECT_NE(loop_->health().capture_last_error.find("too large"), std::string::npos)
      << loop_->health().capture_last_error;
  loop_->Stop();
  EXPECT_EQ(sink_.records.size(), 20u);
  bool logged = false;
  for (const auto& l : log_lines_) logged |= l.find("raw capture") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(DrainLoopTest, SigtermDisablesTracingDrainsEverythingAndStops) {
  StartLoop();
  SignalHandlers signals(
      io_, [&](int) { loop_->Stop(); }, nullptr);
  Fill(0, 7, 1000);
  Fill(1, 9, 1000);
  ::raise(SIGTERM);
  Poll();
  EXPECT_TRUE(loop_->stopped());
  EXPECT_EQ(hv_.disable_calls, 1);
  EXPECT_EQ(sink_.records.size(), 16u);
  EXPECT_EQ(loop_->health().merger_pending, 0u);
  // Nothing of the loop is left on the io_context: run() returns at once.
  signals.Cancel();
  io_.restart();
  io_.run();
  EXPECT_EQ(sched_.pending(), 0u);
}

TEST_F(DrainLoopTest, StopWithoutDisablingLeavesTracingOn) {
  StartLoop([&](DrainLoopOptions& o) { o.disable_tracing_on_exit = false; });
  Fill(0, 3, 1000);
  loop_->Stop();
  EXPECT_EQ(hv_.disable_calls, 0);
  EXPECT_EQ(sink_.records.size(), 3u);
}

// Takes merged records one at a time, as the default sink does, after checking each offer the
// way an engine relies on it: the head record lies whole inside the bytes the merger holds.
class CheckingSink final : public MergedRecordSink {
 public:
  void Add(const tracefmt::MergedRecord&) override { ++records; }
  tracefmt::RunTaken TakeRun(const tracefmt::RunOffer& offer) override {
    // No test here holds more than a few MiB: a larger offer is a cursor past the merger's data.
    constexpr size_t kMaxHeldBytes = 64u << 20;
    const size_t held = offer.bytes.size();
    if (held < 4 || held > kMaxHeldBytes ||
        tracefmt::RecordBytesFromHeader(tracefmt::Load32(offer.bytes.data())) > held) {
      ++malformed;
      // Take everything offered, so the merger's cursor lands on its end and the test can fail
      // on the count instead of walking on past the buffer.
      return tracefmt::RunTaken{.bytes = held, .records = 0, .last_tsc = offer.tsc};
    }
    return MergedRecordSink::TakeRun(offer);
  }
  uint64_t records = 0;
  uint64_t malformed = 0;
};

// Another dom0 process can write the mapped ring while the daemon drains it. The loop must hand
// the merger (and so the accounting) only records it checked: here a thread scribbles random
// words over both rings' data areas the whole time the loop drains them, and every record the
// merger gives back must be whole and every record held must come out.
TEST(DrainLoopHostileMemoryTest, ConcurrentScribblerNeverBreaksWhatTheMergerHolds) {
  FakeHypervisor hv({0, 1}, 8);
  boost::asio::io_context io;
  ManualScheduler sched;
  Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
  CheckingSink sink;
  DrainLoopOptions options;
  options.backstop_ns = 0;
  options.anomaly_log_burst = 0;
  DrainLoop loop(io, sched, hv, sink, log, options);
  TraceSetup setup;
  setup.pages_per_cpu = 8;
  ASSERT_TRUE(loop.Start(setup, *hv.GetPhysInfo()).ok());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> scribbled{0};
  std::thread scribbler([&] {
    std::mt19937 rng(12345);
    const uint32_t words = hv.data_size() / 4;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 256; ++i) {
        const size_t cpu = rng() & 1;
        auto* data = reinterpret_cast<uint32_t*>(hv.ring(cpu).buffer().data() + 8);
        std::atomic_ref<uint32_t>(data[rng() % words]).store(rng(), std::memory_order_relaxed);
      }
      scribbled.fetch_add(256, std::memory_order_relaxed);
    }
  });

  uint64_t tsc = 1000;
  // Windows of a few hundred records: the longer a walk, the more a writer can change behind it.
  for (int round = 0; round < 1500; ++round) {
    for (int i = 0; i < 600; ++i, tsc += 7) {
      // 28- and 16-byte records: the data area is no multiple of either, so WRAP padding comes.
      (void)hv.Write(0, kEvent, tsc, {1, 2, 3, 4});
      (void)hv.Write(1, kEvent, tsc, {static_cast<uint32_t>(i)});
    }
    loop.DrainNow();
    // Let the scribbler run between passes too, on a loaded machine as well.
    if (round % 500 == 0) {
      const uint64_t before = scribbled.load(std::memory_order_relaxed);
      while (scribbled.load(std::memory_order_relaxed) == before) std::this_thread::yield();
    }
  }
  stop = true;
  scribbler.join();
  loop.Stop();

  EXPECT_EQ(sink.malformed, 0u);
  EXPECT_GT(sink.records, 0u);
  // Everything the merger was given came out: the records it counted in are the records taken.
  EXPECT_EQ(loop.health().merger_pending, 0u);
}

// The host's trace masks outlive the daemon (the next `xentrace` without -e inherits them): the
// loop gives back what it found on every way out once it has changed them.
class MaskRestoreTest : public DrainLoopTest {
 protected:
  static constexpr uint32_t kFoundMask = 0x0004f000;  // what some earlier consumer left
  MaskRestoreTest() {
    hv_.event_mask = kFoundMask;
    hv_.cpu_mask = {0};  // Xen cannot report this one: it gets Xen's default, every CPU
  }
  tracefmt::Status StartWithMasks(const std::function<void(DrainLoopOptions&)>& configure = {}) {
    return TryStart(configure, [](TraceSetup& setup) {
      setup.event_mask = tracefmt::ev::kSched;
      setup.cpu_mask = {0, 1};
    });
  }
  void ExpectRestored() {
    EXPECT_EQ(hv_.event_mask, kFoundMask);
    EXPECT_TRUE(hv_.cpu_mask.empty());
  }
};

TEST_F(MaskRestoreTest, SigtermRestoresTheMasksFound) {
  ASSERT_TRUE(StartWithMasks().ok());
  EXPECT_EQ(hv_.event_mask, tracefmt::ev::kSched);
  EXPECT_EQ(hv_.cpu_mask, (std::vector<uint32_t>{0, 1}));
  SignalHandlers signals(
      io_, [&](int) { loop_->Stop(); }, nullptr);
  ::raise(SIGTERM);
  Poll();
  ASSERT_TRUE(loop_->stopped());
  ExpectRestored();
  signals.Cancel();
}

TEST_F(MaskRestoreTest, StopAsDurationDoesRestoresThemEvenWhenTracingIsKept) {
  ASSERT_TRUE(StartWithMasks([](DrainLoopOptions& o) { o.disable_tracing_on_exit = false; }).ok());
  Fill(0, 3, 1000);
  loop_->Stop();  // what --duration does
  EXPECT_EQ(sink_.records.size(), 3u);
  EXPECT_EQ(hv_.disable_calls, 0);
  ExpectRestored();
}

TEST_F(MaskRestoreTest, FailedStartAfterTracingWasEnabledDisablesItAndRestores) {
  TempDir dir;
  // The capture cannot be created (its directory does not exist): start-up fails after tracing
  // was enabled.
  const tracefmt::Status st =
      StartWithMasks([&](DrainLoopOptions& o) { o.capture_path = dir / "missing/capture.xt"; });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(hv_.disable_calls, 1);
  ExpectRestored();
}

TEST_F(MaskRestoreTest, FailedEnableRestoresTheMasksAndLeavesTracingAlone) {
  hv_.enable_error = "another consumer holds VIRQ_TBUF";
  ASSERT_FALSE(StartWithMasks().ok());
  EXPECT_EQ(hv_.disable_calls, 0);  // tracing may be the other consumer's
  ExpectRestored();
}

TEST_F(MaskRestoreTest, LoopGoneWithoutStopStillRestores) {
  ASSERT_TRUE(StartWithMasks().ok());
  loop_.reset();  // a fatal error after start-up: the daemon unwinds without a final drain
  EXPECT_EQ(hv_.disable_calls, 1);
  ExpectRestored();
}

TEST_F(MaskRestoreTest, UnreadableEventMaskRestoresXensDefault) {
  hv_.event_mask_error = "no XEN_SYSCTL_TBUFOP_get_info";
  ASSERT_TRUE(StartWithMasks().ok());
  loop_->Stop();
  EXPECT_EQ(hv_.event_mask, tracefmt::ev::kAll);
  EXPECT_TRUE(hv_.cpu_mask.empty());
}

TEST_F(MaskRestoreTest, MasksNotAskedForAreNotTouched) {
  StartLoop();  // event mask 0 and no CPU list: the host's masks are left as they are
  loop_->Stop();
  EXPECT_EQ(hv_.event_mask, kFoundMask);
  EXPECT_EQ(hv_.cpu_mask, (std::vector<uint32_t>{0}));
}

// Runs each task late, as an event loop busy with other handlers does: when a task runs, the
// clock reads its deadline plus the lateness the test gives.
class LateScheduler final : public Scheduler {
 public:
  uint64_t NowNs() const override { return now_ns_.load(); }
  uint64_t UnixNowNs() const override { return 1'700'000'000'000'000'000 + NowNs(); }
  uint64_t RunAfter(uint64_t delay_ns, std::function<void()> task) override {
    tasks_.emplace(++next_id_, std::make_pair(NowNs() + delay_ns, std::move(task)));
    return next_id_;
  }
  void Cancel(uint64_t id) override { tasks_.erase(id); }
  // Runs the task due first, `late_ns` after its deadline.
  void RunNextLate(uint64_t late_ns) {
    auto first = std::min_element(tasks_.begin(), tasks_.end(), [](const auto& a, const auto& b) {
      return a.second.first < b.second.first;
    });
    ASSERT_NE(first, tasks_.end());
    now_ns_ = first->second.first + late_ns;
    std::function<void()> task = std::move(first->second.second);
    tasks_.erase(first);
    task();
  }

 private:
  std::atomic<uint64_t> now_ns_{1'000'000'000};
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::pair<uint64_t, std::function<void()>>> tasks_;
};

TEST(DrainLatencyTest, BackstopWakeIsTimedFromTheTimersDueTime) {
  FakeHypervisor hv({0}, 2);
  boost::asio::io_context io;
  LateScheduler sched;
  Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
  CollectingSink sink;
  DrainLoopOptions options;
  options.backstop_ns = kBackstopNs;
  DrainLoop loop(io, sched, hv, sink, log, options);
  TraceSetup setup;
  setup.pages_per_cpu = 2;
  ASSERT_TRUE(loop.Start(setup, *hv.GetPhysInfo()).ok());
  io.poll();  // the first pass, at start
  ASSERT_TRUE(hv.Write(0, kEvent, 1000, {0}));
  sched.RunNextLate(7'000'000);  // the loop was busy for 7 ms when the backstop fell due
  EXPECT_EQ(loop.health().wakes_timer, 1u);
  EXPECT_EQ(hv.ring(0).LoadCons(), hv.ring(0).LoadProd());
  EXPECT_EQ(loop.health().drain_latency.max_ns, 7'000'000u);
  EXPECT_EQ(loop.health().wake_to_drain_start.max_ns, 7'000'000u);
  EXPECT_EQ(loop.health().irq_to_drain_max_ns, 0u);  // no interrupt wake
}

// The interrupt arrives while the loop is busy with something else (an API client): the drain's
// latency counts from the arrival, which a thread of its own notes, not from the handler's start.
TEST_F(DrainLoopTest, InterruptWakeIsTimedFromItsArrivalNotFromTheHandler) {
  StartLoop([](DrainLoopOptions& o) { o.backstop_ns = 0; });
  Fill(0, kRecordsToHalf, 1000);  // crosses half full: the interrupt
  loop_->WaitForInterruptStampForTesting();
  sched_.Advance(5'000'000);  // 5 ms on other handlers before the drain's gets its turn
  Poll();
  const DaemonHealth& h = loop_->health();
  EXPECT_EQ(h.wakes_irq, 1u);
  EXPECT_EQ(hv_.ring(0).LoadCons(), hv_.ring(0).LoadProd());
  EXPECT_EQ(h.irq_to_drain_max_ns, 5'000'000u);
  EXPECT_EQ(h.wake_to_drain_start.max_ns, 5'000'000u);
  EXPECT_EQ(h.drain_latency.max_ns, 5'000'000u);
  EXPECT_EQ(h.drain_pass.max_ns, 0u);  // the manual clock stands still during a pass
}

// By default Xen traces what the accounting reads and nothing else: every class more fills the
// buffers faster and costs the hypervisor time on every hypercall or VM exit it traces.
TEST(DefaultEventMaskTest, TracesWhatTheAccountingReadsAndNotTheCostlyClasses) {
  namespace ev = tracefmt::ev;
  const std::optional<uint32_t> mask = tracefmt::ParseEventMask(DaemonOptions{}.event_mask);
  ASSERT_TRUE(mask.has_value());
  // Runstate changes (running to blocked, for one), the verbose scheduler records the engine
  // reads (wake, block, the dispatched vCPU, domain add/remove) and dom0's domain operations.
  const uint32_t running_to_blocked = ev::kRunstateChange | (0u << 8) | (2u << 4);
  for (uint32_t event : {running_to_blocked, ev::kSwitchInfNext, ev::kWake, ev::kBlock, ev::kDomAdd,
                         ev::kDomRem, ev::kDom0DomAdd, ev::kDom0DomRem})
    EXPECT_TRUE(tracefmt::EventMaskAdmits(*mask, event)) << std::hex << event;
  // Per-hypercall, per-VM-exit and per-grant records (the activity counts: opt-in), the
  // scheduler-specific records the engine never reads (credit2 writes most of a capture's), and
  // GEN records (LOST_RECORDS and WRAP are written whatever the mask).
  for (uint32_t event : {ev::kPvHypercall, ev::kPvHypercallV2, ev::kHvmIoRead, ev::kHvmIoportWrite,
                         ev::kMemPageGrantMap, ev::kCsched2Tick, ev::kCsched2CreditBurn,
                         ev::kCschedTickle, ev::kGen + 4})
    EXPECT_FALSE(tracefmt::EventMaskAdmits(*mask, event)) << std::hex << event;
}

class SparseCpuLoopTest : public DrainLoopTest {
 protected:
  SparseCpuLoopTest() : DrainLoopTest({0, 3, 6}, 2) {}
};

TEST_F(SparseCpuLoopTest, SparseCpuIdsAreCarriedThrough) {
  StartLoop();
  Fill(2, 4, 1000);
  loop_->Stop();
  ASSERT_EQ(sink_.records.size(), 4u);
  EXPECT_EQ(sink_.records[0].cpu, 6u);
  EXPECT_EQ(loop_->health().cpus[2].cpu, 6u);
}

TEST(LatencyHistogramTest, MinMeanMaxAndQuantiles) {
  LatencyHistogram h;
  for (uint64_t ns : {100u, 200u, 300u, 5000u}) h.Add(ns);
  EXPECT_EQ(h.count, 4u);
  EXPECT_EQ(h.min_ns, 100u);
  EXPECT_EQ(h.max_ns, 5000u);
  EXPECT_DOUBLE_EQ(h.mean_ns(), 1400.0);
  EXPECT_EQ(h.QuantileUpperNs(0.5), 256u);
  EXPECT_EQ(h.QuantileUpperNs(1.0), 5000u);
}

TEST(ManualSchedulerTest, PeriodicTaskRunsOncePerPeriodAndCancelWorks) {
  ManualScheduler s;
  int runs = 0;
  std::function<void()> tick = [&] {
    ++runs;
    s.RunAfter(10, tick);
  };
  s.RunAfter(10, tick);
  s.Advance(95);
  EXPECT_EQ(runs, 9);
  const uint64_t id = s.RunAfter(1, [&] { runs = -100; });
  s.Cancel(id);
  s.Advance(5);
  EXPECT_EQ(runs, 10);
}

}  // namespace
}  // namespace xenbaked
