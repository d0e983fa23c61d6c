// Property tests: long randomized runs, many seeds, a consumer at random latencies and budgets.
// Whatever the simulator writes, tracefmt's ring reader decodes without an anomaly; every record
// the model emitted is drained in order or counted lost; LOST_RECORDS counts equal the drops.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>

#include "simulator/produced_log.h"
#include "simulator/producer.h"
#include "simulator/scheduler_model.h"
#include "simulator/trace_memory.h"
#include "test_ring.h"
#include "tracefmt/events.h"

namespace simulator {
namespace {

namespace ev = tracefmt::ev;
using tracefmt::Record;

struct RunConfig {
  WorkloadConfig workload;
  uint32_t pages = 1;
  uint64_t duration_ns = 0;
  uint64_t max_latency_ns = 0;
};

RunConfig RandomRun(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); };
  RunConfig r;
  WorkloadConfig& w = r.workload;
  w.seed = seed;
  w.cpu_ids.clear();
  const uint64_t ncpus = pick(1, 4);
  for (uint32_t id = 0; w.cpu_ids.size() < ncpus; id += static_cast<uint32_t>(pick(1, 3)))
    w.cpu_ids.push_back(id);
  w.domains = static_cast<uint32_t>(pick(1, 40));
  w.vcpus_per_domain = static_cast<uint32_t>(pick(1, 4));
  w.hypercall_hz = static_cast<double>(pick(0, 20000));
  w.io_hz = static_cast<double>(pick(0, 2000));
  w.churn_hz = static_cast<double>(pick(0, 100));
  w.mean_lifetime_ns = pick(1, 100) * 1'000'000;
  w.burst_interval_ns = pick(0, 1) ? pick(1, 200) * 1'000'000 : 0;
  w.burst_records = static_cast<uint32_t>(pick(10, 3000));
  w.mean_run_ns = pick(50, 5000) * 1000;
  w.mean_block_ns = pick(50, 20000) * 1000;
  w.tsc_skew_ticks = pick(0, 1) ? pick(1, 1'000'000) : 0;
  r.pages = static_cast<uint32_t>(pick(1, 4));
  r.duration_ns = pick(200, 1500) * 1'000'000;
  r.max_latency_ns = pick(1, 30) * 1'000'000;
  return r;
}

struct CpuCapture {
  std::vector<std::byte> bytes;  // every window, in order, as xentrace would write them
  std::vector<Record> records;
};

class PropertyRun {
 public:
  explicit PropertyRun(const RunConfig& config) : config_(config), rng_(config.workload.seed) {
    auto mem = TraceMemory::Create({config.workload.cpu_ids, 0, kDefaultNrCpusLimit, ""});
    EXPECT_TRUE(mem.ok());
    memory_.emplace(std::move(*mem));
    log_.emplace(memory_->nr_cpu_ids());
    producer_.emplace(*memory_, nullptr, &*log_);
    EXPECT_TRUE(producer_->SetSize(config.pages).ok());
    model_.emplace(config.workload, &*producer_);
    captures_.resize(memory_->nr_cpu_ids());
  }

  void Run() {
    while (model_->now_ns() < config_.duration_ns) {
      model_->AdvanceTo(model_->now_ns() + 1 + rng_() % config_.max_latency_ns);
      for (uint32_t cpu : config_.workload.cpu_ids) {
        if (rng_() % 4 == 0) continue;  // this CPU is not read this time
        const uint32_t budget = rng_() % 2 ? ~0u : static_cast<uint32_t>(rng_() % 2000);
        Drain(cpu, budget);
      }
    }
    producer_->Disable();  // as xentrace does on exit, then one last full read
    for (uint32_t cpu : config_.workload.cpu_ids) Drain(cpu, ~0u);
  }

  void Drain(uint32_t cpu, uint32_t budget) {
    CpuCapture& cap = captures_[cpu];
    const uint32_t prod = memory_->LoadProd(cpu);
    const uint32_t cons = memory_->LoadCons(cpu);
    const tracefmt::RingDrain d = tracefmt::DrainRing(
        memory_->CpuData(cpu), cons, prod, budget,
        [&](std::span<const std::byte> run) {
          cap.bytes.insert(cap.bytes.end(), run.begin(), run.end());
        },
        [&](const Record& r) { cap.records.push_back(r); });
    ASSERT_TRUE(d.ok()) << tracefmt::RingAnomalyName(d.anomaly);
    memory_->StoreCons(cpu, d.new_cons);
  }

  const RunConfig& config_;
  std::mt19937_64 rng_;
  std::optional<TraceMemory> memory_;
  std::optional<ProducedLog> log_;
  std::optional<TraceProducer> producer_;
  std::optional<SchedulerModel> model_;
  std::vector<CpuCapture> captures_;
};

class ProducerPropertyTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ProducerPropertyTest, EveryRecordIsDrainedInOrderOrCountedLost) {
  const RunConfig config = RandomRun(GetParam());
  PropertyRun run(config);
  run.Run();
  if (HasFatalFailure()) return;
  uint64_t written_total = 0, dropped_total = 0;
  for (uint32_t cpu : config.workload.cpu_ids) {
    const CpuCapture& cap = run.captures_[cpu];
    const CpuTraceStats& stats = run.producer_->stats(cpu);
    // The consumer holds exactly the bytes the producer wrote, in order.
    const auto written = run.log_->WrittenBytes(cpu);
    ASSERT_TRUE(std::equal(cap.bytes.begin(), cap.bytes.end(), written.begin(), written.end()))
        << "cpu " << cpu << ": drained " << cap.bytes.size() << " of " << written.size();
    // LOST_RECORDS counts: each names the drops since the previous one, first TSC included.
    const std::vector<Record>& dropped = run.log_->Dropped(cpu);
    size_t next_drop = 0;
    uint64_t reported = 0, last_tsc = 0, payload = 0;
    for (const Record& r : cap.records) {
      if (r.event == ev::kWrapBuffer) continue;
      if (auto lost = tracefmt::AsLostRecords(r)) {
        ASSERT_GT(lost->count, 0u);
        ASSERT_LE(next_drop + lost->count, dropped.size());
        EXPECT_EQ(lost->first_tsc, dropped[next_drop].tsc);
        for (uint32_t k = 0; k < lost->count; ++k) {
          const uint64_t t = dropped[next_drop + k].tsc;
          EXPECT_GT(t, last_tsc);  // lost in order, after the last record that made it
          EXPECT_LE(t, r.tsc);
        }
        next_drop += lost->count;
        reported += lost->count;
        continue;
      }
      ++payload;
      if (r.has_tsc) {
        EXPECT_GT(r.tsc, last_tsc) << "cpu " << cpu;
        last_tsc = r.tsc;
      }
    }
    EXPECT_EQ(reported, stats.dropped_reported);
    EXPECT_EQ(payload, stats.records_written);
    EXPECT_EQ(stats.dropped, stats.dropped_reported + stats.dropped_cleared + stats.pending_lost);
    EXPECT_EQ(stats.dropped, dropped.size());
    EXPECT_EQ(stats.pending_lost, 0u);  // Disable forgot them
    written_total += stats.records_written;
    dropped_total += stats.dropped;
  }
  EXPECT_EQ(written_total + dropped_total, run.model_->records_emitted());
  RecordProperty("dropped", std::to_string(dropped_total));
  RecordProperty("written", std::to_string(written_total));
}

INSTANTIATE_TEST_SUITE_P(Seeds, ProducerPropertyTest, ::testing::Range<uint64_t>(1, 61));

}  // namespace
}  // namespace simulator
