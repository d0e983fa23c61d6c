// The accounting engine's soundness and monotonicity over random schedules, as a property: a
// schedule with known per-vCPU truth is written as Xen writes it per CPU, records are dropped in
// runs and replaced by TRC_LOST_RECORDS as xen/common/trace.c writes them, the CPUs' streams are
// merged with records from different CPUs out of TSC order by less than the engine's reorder
// tolerance, and for every vCPU and state the truth must lie within [reported, reported +
// unknown], while successive snapshots never show a total going down.
//
// Where Xen writes each record (what makes a loss on one CPU hide changes seen elsewhere):
// schedule() on a CPU writes the runstate changes of the vCPU it switches out and of the one it
// switches in; a wake (blocked or offline to runnable) and a pause (to offline) are written on
// the CPU of whoever wakes or pauses it, any CPU. A CPU that ran out of buffer space drops
// records, counts them and keeps the first one's TSC; the next record that fits is preceded by
// TRC_LOST_RECORDS with the count, the vCPU current there and that first lost TSC, stamped when
// space freed. So in TSC order the report comes after what the other CPUs wrote meanwhile.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "accounting_test_util.h"
#include "xenbaked/accounting.h"

namespace xenbaked {
namespace {

using namespace xenbaked::testing;  // NOLINT: test helpers

constexpr uint64_t kReorderTicks = 10'000;  // the engine's tolerance: 10 µs at 1 GHz
constexpr int kSeeds = 300;
constexpr int kEventsPerSeed = 3000;

struct VcpuId {
  uint32_t domid = 0;
  uint32_t vcpu = 0;
  auto operator<=>(const VcpuId&) const = default;
};

// One vCPU's true history: its state from the start, and each change with its TSC.
struct History {
  Runstate initial = kOff;
  std::vector<std::pair<uint64_t, Runstate>> changes;

  // True time in each state within [from, to].
  std::array<uint64_t, 4> TimeIn(uint64_t from, uint64_t to) const {
    std::array<uint64_t, 4> t{};
    Runstate state = initial;
    uint64_t at = from;
    for (const auto& [tsc, next] : changes) {
      if (tsc > at) {
        const uint64_t until = std::min(tsc, to);
        if (until > at) t[static_cast<size_t>(state)] += until - at;
        at = std::max(at, until);
      }
      state = next;
    }
    if (to > at) t[static_cast<size_t>(state)] += to - at;
    return t;
  }
};

struct Schedule {
  uint32_t cpus = 0;
  std::vector<std::vector<tracefmt::Record>> streams;             // per CPU, as Xen writes them
  std::vector<std::vector<std::pair<uint64_t, VcpuId>>> current;  // per CPU: who runs from when
  std::map<VcpuId, History> truth;
  uint64_t end_tsc = 0;
};

// A random schedule: 2–4 CPUs, each with its idle vCPU, and 2–3 guests of 1–3 vCPUs that run,
// wait, block, are woken and paused. One CPU may be quiet (few records), which keeps the
// engine's held interval ends waiting on it.
Schedule Generate(std::mt19937_64& rng) {
  Schedule s;
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  s.cpus = 2 + static_cast<uint32_t>(pick(3));
  s.streams.resize(s.cpus);
  s.current.resize(s.cpus);
  const uint32_t quiet_cpu = chance(0.5) ? static_cast<uint32_t>(pick(s.cpus)) : s.cpus;

  std::map<VcpuId, Runstate> state;
  std::vector<VcpuId> guests;
  const uint32_t domains = 2 + static_cast<uint32_t>(pick(2));
  for (uint32_t d = 1; d <= domains; ++d)
    for (uint32_t v = 0, n = 1 + static_cast<uint32_t>(pick(3)); v < n; ++v)
      guests.push_back({d, v});
  std::vector<VcpuId> running(s.cpus);
  uint64_t t = 1'000'000;
  for (uint32_t c = 0; c < s.cpus; ++c) running[c] = {ev::kIdleDomain, c};
  for (const VcpuId& g : guests) state[g] = chance(0.5) ? kWait : kBlk;
  for (uint32_t c = 0; c < s.cpus; ++c) {
    // Tracing starts on every CPU at once: each stream opens with a record (never dropped).
    s.streams[c].push_back(MakeRecord(ev::kCsched2Tick, {}, t));
    s.current[c].push_back({0, running[c]});
    state[running[c]] = kRun;
  }
  for (const auto& [id, st] : state) s.truth[id].initial = st;

  auto change = [&](uint32_t cpu, VcpuId id, Runstate to, uint64_t tsc) {
    s.streams[cpu].push_back(RunstateChange(id.domid, id.vcpu, state[id], to, tsc));
    s.truth[id].changes.push_back({tsc, to});
    state[id] = to;
  };
  for (int e = 0; e < kEventsPerSeed; ++e) {
    // Steps from a few ticks (within the reorder tolerance) to a few hundred µs.
    t += chance(0.3) ? 2 + pick(50) : 2 + pick(300'000);
    uint32_t c = static_cast<uint32_t>(pick(s.cpus));
    if (c == quiet_cpu && !chance(0.05)) c = (c + 1) % s.cpus;
    const double kind = std::uniform_real_distribution<double>(0, 1)(rng);
    std::vector<VcpuId> candidates;
    if (kind < 0.45) {
      // schedule() on c: the vCPU running there goes out, a runnable guest (or idle) comes in.
      for (const VcpuId& g : guests)
        if (state[g] == kWait) candidates.push_back(g);
      const VcpuId prev = running[c];
      const VcpuId next = candidates.empty() || chance(0.1) ? VcpuId{ev::kIdleDomain, c}
                                                            : candidates[pick(candidates.size())];
      if (next == prev) continue;
      const bool idle = prev.domid == ev::kIdleDomain;
      const double out = std::uniform_real_distribution<double>(0, 1)(rng);
      change(c, prev, idle || out < 0.5 ? kWait : out < 0.95 ? kBlk : kOff, t);
      change(c, next, kRun, t + 1);
      running[c] = next;
      s.current[c].push_back({t + 1, next});
    } else if (kind < 0.80) {
      // A wake, written on the waker's CPU (any CPU).
      for (const VcpuId& g : guests)
        if (state[g] == kBlk || state[g] == kOff) candidates.push_back(g);
      if (candidates.empty()) continue;
      change(c, candidates[pick(candidates.size())], kWait, t);
    } else if (kind < 0.85) {
      // A pause of a vCPU not running, written on the caller's CPU.
      for (const VcpuId& g : guests)
        if (state[g] == kWait || state[g] == kBlk) candidates.push_back(g);
      if (candidates.empty()) continue;
      change(c, candidates[pick(candidates.size())], kOff, t);
    } else {
      s.streams[c].push_back(MakeRecord(ev::kCsched2Tick, {}, t));  // heard from, no change
    }
  }
  // Every stream ends with a record, so each gap has a record after it for its report.
  t += 2 + pick(100'000);
  for (uint32_t c = 0; c < s.cpus; ++c) s.streams[c].push_back(MakeRecord(ev::kCsched2Tick, {}, t));
  s.end_tsc = t;
  return s;
}

// The vCPU current on `cpu` just before `tsc` (whom Xen's LOST_RECORDS names).
VcpuId CurrentBefore(const Schedule& s, uint32_t cpu, uint64_t tsc) {
  VcpuId who = s.current[cpu].front().second;
  for (const auto& [from, id] : s.current[cpu])
    if (from < tsc) who = id;
  return who;
}

// Drops runs of records from each CPU's stream (never its first or last), each replaced by a
// TRC_LOST_RECORDS before the next record kept, as trace.c writes it.
void DropRuns(Schedule& s, std::mt19937_64& rng, double gap_rate) {
  std::geometric_distribution<size_t> length(0.02);  // 50 records on average, some hundreds
  for (uint32_t c = 0; c < s.cpus; ++c) {
    std::vector<tracefmt::Record>& in = s.streams[c];
    std::vector<tracefmt::Record> out;
    for (size_t i = 0; i < in.size(); ++i) {
      if (i == 0 || i + 1 >= in.size() || !std::bernoulli_distribution(gap_rate)(rng)) {
        out.push_back(in[i]);
        continue;
      }
      const size_t count = std::min(1 + length(rng), in.size() - 1 - i);
      const uint64_t first_lost = in[i].tsc;
      const tracefmt::Record& kept = in[i + count];
      const VcpuId who = CurrentBefore(s, c, kept.tsc);
      out.push_back(LostRecords(static_cast<uint32_t>(count), static_cast<uint16_t>(who.domid),
                                static_cast<uint16_t>(who.vcpu), first_lost, kept.tsc));
      out.push_back(kept);
      i += count;
    }
    in = std::move(out);
  }
}

struct Delivered {
  uint32_t cpu = 0;
  tracefmt::Record rec;
};

// The merge, with each record delayed by up to the tolerance (each CPU's own order kept): records
// of different CPUs come out of TSC order by less than kReorderTicks.
std::vector<Delivered> Merge(const Schedule& s, std::mt19937_64& rng, uint64_t jitter) {
  std::vector<std::pair<uint64_t, Delivered>> keyed;
  for (uint32_t c = 0; c < s.cpus; ++c) {
    uint64_t key = 0;
    for (const tracefmt::Record& rec : s.streams[c]) {
      const uint64_t delay =
          jitter == 0 ? 0 : std::uniform_int_distribution<uint64_t>(0, jitter)(rng);
      key = std::max(key, rec.tsc + delay);
      keyed.push_back({key, {c, rec}});
    }
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Delivered> merged;
  for (auto& [key, d] : keyed) merged.push_back(d);
  return merged;
}

using Figures = std::map<VcpuId, std::array<uint64_t, 5>>;

Figures ByVcpu(const AccountingSnapshot& snap) {
  Figures f;
  for (const DomainTotals& d : snap.domains) {
    for (const VcpuTotals& v : d.vcpus)
      if (v.seen)
        f[{d.domid, v.vcpu}] = {v.running_ns, v.runnable_ns, v.blocked_ns, v.offline_ns,
                                v.unknown_ns};
    f[{d.domid, ~0u}] = {d.running_ns, d.runnable_ns, d.blocked_ns, d.offline_ns, d.unknown_ns};
  }
  return f;
}

constexpr std::array<const char*, 5> kNames = {"running", "runnable", "blocked", "offline",
                                               "unknown"};

struct Outcome {
  uint64_t lost = 0, unknown = 0, elapsed = 0;
};

Outcome CheckOne(uint32_t seed) {
  std::mt19937_64 rng(seed);
  Schedule s = Generate(rng);
  // A third of the seeds lose nothing (reordering alone); the others lose up to about a fifth of
  // their records.
  const double gap_rate =
      seed % 3 == 0 ? 0.0 : std::uniform_real_distribution<double>(0, 0.005)(rng);
  DropRuns(s, rng, gap_rate);
  const uint64_t jitter = seed % 2 == 0 ? kReorderTicks - 1 : 0;
  const std::vector<Delivered> merged = Merge(s, rng, jitter);

  AccountingEngine engine({.cpu_khz = kOneGhzKhz});
  Figures last;
  std::uniform_int_distribution<size_t> every(1, 400);
  size_t next_snapshot = every(rng);
  for (size_t i = 0; i < merged.size(); ++i) {
    engine.Add(merged[i].cpu, merged[i].rec.tsc, merged[i].rec);
    if (i + 1 != next_snapshot) continue;
    next_snapshot += every(rng);
    const Figures now = ByVcpu(engine.Snapshot(engine.now_tsc()));
    for (const auto& [id, before] : last) {
      SCOPED_TRACE(::testing::Message()
                   << "d" << id.domid << "v" << int(id.vcpu) << " record " << i);
      const auto it = now.find(id);
      if (it == now.end()) {
        ADD_FAILURE() << "no longer published";
        continue;
      }
      for (size_t b = 0; b < 5; ++b)
        EXPECT_LE(before[b], it->second[b]) << kNames[b] << " went down";
    }
    last = now;
  }
  engine.EndOfInput();
  const AccountingSnapshot snap = engine.Snapshot(s.end_tsc);
  const uint64_t epoch = merged.front().rec.tsc;  // the engine's time starts at its first record
  Outcome o;
  o.lost = snap.lost_records;
  for (const DomainTotals& d : snap.domains)
    for (const VcpuTotals& v : d.vcpus) {
      if (!v.seen) continue;
      SCOPED_TRACE(::testing::Message() << "d" << d.domid << "v" << v.vcpu);
      const auto truth = s.truth.at({d.domid, v.vcpu}).TimeIn(epoch, s.end_tsc);
      const std::array<uint64_t, 4> reported = {v.running_ns, v.runnable_ns, v.blocked_ns,
                                                v.offline_ns};
      EXPECT_EQ(reported[0] + reported[1] + reported[2] + reported[3] + v.unknown_ns,
                s.end_tsc - epoch)
          << "the span splits exactly";
      for (size_t b = 0; b < 4; ++b) {
        EXPECT_LE(reported[b], truth[b]) << kNames[b] << ": reported above the truth";
        EXPECT_LE(truth[b], reported[b] + v.unknown_ns)
            << kNames[b] << ": the truth beyond reported + unknown";
      }
      o.unknown += v.unknown_ns;
      o.elapsed += s.end_tsc - epoch;
    }
  return o;
}

TEST(AccountingPropertyTest, LossAndReorderNeverBreakSoundnessOrMonotonicTotals) {
  uint64_t lost = 0, unknown = 0, elapsed = 0;
  for (uint32_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const Outcome o = CheckOne(seed);
    lost += o.lost;
    unknown += o.unknown;
    elapsed += o.elapsed;
    if (HasFailure()) break;  // one seed's failures are enough to read
  }
  // The runs do lose records and leave some time unknown, but not all of it: the test exercises
  // what it claims to.
  EXPECT_GT(lost, 0u);
  EXPECT_GT(unknown, 0u);
  EXPECT_LT(unknown, elapsed / 2);
  std::printf("%d seeds: %llu records lost, unknown %.1f %% of elapsed vCPU time\n", kSeeds,
              static_cast<unsigned long long>(lost),
              100.0 * static_cast<double>(unknown) / static_cast<double>(elapsed));
}

}  // namespace
}  // namespace xenbaked
