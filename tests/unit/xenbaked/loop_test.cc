// The drain loop against a fake hypervisor (loop_test_fixture.h): draining by interrupt and
// backstop, budgets, merge order, ring anomalies, loss, the raw capture, signals.
#include "loop_test_fixture.h"

namespace xenbaked {
namespace {

using namespace loop_testing;

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
