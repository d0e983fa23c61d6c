// The scheduler model: determinism, truth that adds up, Xen's record order, domid reuse.
#include "simulator/scheduler_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>

#include "simulator/produced_log.h"
#include "simulator/producer.h"
#include "simulator/trace_memory.h"
#include "test_ring.h"
#include "tracefmt/events.h"

namespace simulator {
namespace {

namespace ev = tracefmt::ev;
using tracefmt::Record;
using tracefmt::Runstate;

struct MergedRec {
  uint32_t cpu;
  Record rec;
};

// A model traced from its first record into big buffers, drained every simulated millisecond.
class TracedModel {
 public:
  explicit TracedModel(WorkloadConfig config, uint32_t pages = 64) {
    auto mem = TraceMemory::Create({config.cpu_ids, 0, kDefaultNrCpusLimit, ""});
    EXPECT_TRUE(mem.ok());
    memory_.emplace(std::move(*mem));
    log_.emplace(memory_->nr_cpu_ids());
    producer_.emplace(*memory_, nullptr, &*log_);
    EXPECT_TRUE(producer_->SetSize(pages).ok());
    model_.emplace(config, &*producer_);
    cpus_ = config.cpu_ids;
  }
  void Run(uint64_t ns) {
    for (uint64_t t = model_->now_ns(); t < ns;) {
      t = std::min(ns, t + 1'000'000);
      model_->AdvanceTo(t);
      for (uint32_t cpu : cpus_) {
        auto out = testing::DrainCpu(*memory_, cpu);
        EXPECT_TRUE(out.drain.ok());
        for (const Record& r : out.records) merged_.push_back({cpu, r});
      }
    }
  }
  // All CPUs' records in TSC order.
  std::vector<MergedRec> Merged() const {
    std::vector<MergedRec> out = merged_;
    std::stable_sort(out.begin(), out.end(),
                     [](const MergedRec& a, const MergedRec& b) { return a.rec.tsc < b.rec.tsc; });
    return out;
  }
  SchedulerModel& model() { return *model_; }
  TraceProducer& producer() { return *producer_; }
  const ProducedLog& log() const { return *log_; }

 private:
  std::optional<TraceMemory> memory_;
  std::optional<ProducedLog> log_;
  std::optional<TraceProducer> producer_;
  std::optional<SchedulerModel> model_;
  std::vector<uint32_t> cpus_;
  std::vector<MergedRec> merged_;
};

WorkloadConfig SmallWorkload(uint64_t seed) {
  WorkloadConfig c;
  c.seed = seed;
  c.cpu_ids = {0, 1, 3};  // sparse
  c.domains = 5;
  c.vcpus_per_domain = 2;
  c.churn_hz = 50;
  c.mean_lifetime_ns = 40'000'000;
  return c;
}

TEST(SchedulerModelTest, SameSeedSameRecordsAndTruth) {
  TracedModel a(SmallWorkload(7)), b(SmallWorkload(7)), c(SmallWorkload(8));
  a.Run(200'000'000);
  b.Run(200'000'000);
  c.Run(200'000'000);
  for (uint32_t cpu : {0u, 1u, 3u}) {
    const auto x = a.log().WrittenBytes(cpu);
    const auto y = b.log().WrittenBytes(cpu);
    ASSERT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << cpu;
  }
  EXPECT_NE(a.log().WrittenBytes(0).size(), c.log().WrittenBytes(0).size());
}

TEST(SchedulerModelTest, EachVcpusStateTimesAddUpToItsLifetime) {
  TracedModel m(SmallWorkload(3));
  m.Run(500'000'000);
  const Truth t = m.model().TruthNow();
  size_t destroyed = 0;
  for (const DomainTruth& d : t.domains) {
    const uint64_t end = d.alive ? t.now_ns : d.destroyed_ns;
    destroyed += d.alive ? 0 : 1;
    for (const VcpuTruth& v : d.vcpus) {
      uint64_t sum = 0;
      for (uint64_t ns : v.state_ns) sum += ns;
      EXPECT_EQ(sum, end - d.created_ns) << "d" << d.id << "v" << v.vcpu;
    }
  }
  EXPECT_GT(destroyed, 0u);
  // One idle vCPU per CPU, named by CPU id.
  ASSERT_EQ(t.domains[0].id, ev::kIdleDomain);
  ASSERT_EQ(t.domains[0].vcpus.size(), 3u);
  EXPECT_EQ(t.domains[0].vcpus[2].vcpu, 3);
}

TEST(SchedulerModelTest, RunstateChangesChainAcrossCpusAndCountDispatches) {
  TracedModel m(SmallWorkload(11));
  m.Run(300'000'000);
  std::map<std::pair<uint16_t, uint16_t>, Runstate> last;
  std::map<std::pair<uint16_t, uint16_t>, uint64_t> dispatches;
  uint64_t changes = 0;
  for (const MergedRec& mr : m.Merged()) {
    auto rc = tracefmt::AsRunstateChange(mr.rec);
    if (!rc) continue;
    ++changes;
    const auto key = std::make_pair(rc->domain, rc->vcpu);
    auto it = last.find(key);
    if (it != last.end()) {
      EXPECT_EQ(it->second, rc->old_state) << "d" << rc->domain << "v" << rc->vcpu;
    }
    last[key] = rc->new_state;
    if (rc->new_state == Runstate::kRunning) ++dispatches[key];
    if (rc->new_state == Runstate::kOffline) last.erase(key);  // the id may be reused
  }
  EXPECT_GT(changes, 1000u);
  // Live domains: dispatch counts seen in the trace equal the truth.
  const Truth t = m.model().TruthNow();
  for (const DomainTruth& d : t.domains) {
    if (!d.alive || d.id == ev::kIdleDomain || d.created_ns != 0) continue;
    for (const VcpuTruth& v : d.vcpus)
      EXPECT_EQ(dispatches[std::make_pair(d.id, v.vcpu)], v.dispatches)
          << "d" << d.id << "v" << v.vcpu;
  }
}

TEST(SchedulerModelTest, ContextSwitchRecordsComeInXensOrder) {
  TracedModel m(SmallWorkload(5));
  m.Run(100'000'000);
  const std::vector<Record> recs = m.log().WrittenRecords(0);
  size_t switches = 0;
  for (size_t i = 0; i + 4 < recs.size(); ++i) {
    if (recs[i].event != ev::kSwitchInfPrev) continue;
    ++switches;
    ASSERT_EQ(recs[i + 1].event, ev::kSwitchInfNext);
    ASSERT_EQ(recs[i + 2].event, ev::kSwitch);
    auto prev = tracefmt::AsRunstateChange(recs[i + 3]);
    auto next = tracefmt::AsRunstateChange(recs[i + 4]);
    ASSERT_TRUE(prev && next);
    EXPECT_EQ(prev->old_state, Runstate::kRunning);
    EXPECT_EQ(next->new_state, Runstate::kRunning);
    auto sw = tracefmt::AsSwitch(recs[i + 2]);
    EXPECT_EQ(sw->prev_domain, prev->domain);
    EXPECT_EQ(sw->next_domain, next->domain);
    auto inf_next = tracefmt::AsSwitchInfNext(recs[i + 1]);
    if (next->old_state != Runstate::kRunnable) {
      EXPECT_EQ(inf_next->waited_ns, 0u);
    }
    if (next->domain == ev::kIdleDomain) {
      EXPECT_EQ(inf_next->next_time_ns, ev::kNoTimeLimit);
    }
  }
  EXPECT_GT(switches, 10u);
}

TEST(SchedulerModelTest, DomainIdsWrapBelowTheReservedRangeAndAreReused) {
  WorkloadConfig c = SmallWorkload(2);
  c.first_new_domid = 0x7fe8;
  c.vcpus_per_domain = 1;
  c.hypercall_hz = 0;
  c.io_hz = 0;
  c.churn_hz = 40000;  // Xen's rover reuses an id only after going once round all of them
  c.mean_lifetime_ns = 100'000;
  SchedulerModel model(c, nullptr);
  model.AdvanceTo(1'000'000'000);
  const Truth t = model.TruthNow();
  std::map<uint16_t, int> seen;
  for (const DomainTruth& d : t.domains) {
    EXPECT_TRUE(d.id < 0x7ff0 || d.id == ev::kIdleDomain) << d.id;
    ++seen[d.id];
  }
  EXPECT_EQ(seen[0x7fef], 2);  // the last id below the reserved range, before and after wrapping
  EXPECT_EQ(seen[1], 1);       // live since the start: never reused
  EXPECT_EQ(seen[5], 2);       // the first free id after the wrap, and again a lap later
}

TEST(SchedulerModelTest, ThousandsOfDomains) {
  WorkloadConfig c;
  c.cpu_ids = {0, 1, 2, 3, 4, 5, 6, 7};
  c.domains = 3000;
  c.vcpus_per_domain = 1;
  SchedulerModel model(c, nullptr);
  model.AdvanceTo(200'000'000);
  EXPECT_EQ(model.LiveDomains().size(), 3000u);
  EXPECT_GT(model.records_emitted(), 10000u);
}

}  // namespace
}  // namespace simulator
