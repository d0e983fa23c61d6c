// The drain loop on its ways out and under attack (loop_test_fixture.h): ring memory scribbled on
// while it drains, the trace masks given back on every exit, drain latency timed from the wake,
// the default event mask.
#include "loop_test_fixture.h"

namespace xenbaked {
namespace {

using namespace loop_testing;

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

}  // namespace
}  // namespace xenbaked
