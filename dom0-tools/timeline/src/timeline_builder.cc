#include "timeline/timeline_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "names/domain_name.h"
#include "tracefmt/clock.h"
#include "tracefmt/events.h"

namespace xenbake::timeline {
namespace {

using tracefmt::Runstate;

constexpr int64_t kLostRecordsSortIndex = -2;  // loss first: it qualifies everything below it
constexpr int64_t kPhysicalCpusSortIndex = -1;
constexpr int32_t kNoQueue = -1;

// The slice a vCPU is in now.
struct VcpuTrack {
  uint32_t domid = 0;
  uint32_t vcpu = 0;
  Runstate state = Runstate::kOffline;
  uint64_t since_tsc = 0;
  uint32_t since_cpu = 0;  // CPU whose record opened the slice
  bool has_run = false;
  uint32_t last_run_cpu = 0;
  int32_t queue_cpu = kNoQueue;  // run queue that counts it while runnable
};

struct CpuTrack {
  bool seen = false;
  bool lost_track_named = false;
  int64_t run_queue = 0;
  uint64_t lost_end_tsc = 0;  // report TSC of the last loss: loss ranges on a CPU never overlap
};

uint32_t VcpuKey(uint32_t domid, uint32_t vcpu) {
  return VcpuTid(domid, vcpu);
}

}  // namespace

struct TimelineBuilder::Impl {
  Impl(const TimelineConfig& c, TraceEventWriter& o) : config(c), out(o), clock(c.cpu_khz) {}

  void Add(const tracefmt::MergedRecord& m);
  void OnRunstateChange(const tracefmt::MergedRecord& m, const tracefmt::RunstateChange& rc);
  void OnLostRecords(const tracefmt::MergedRecord& m, const tracefmt::LostRecords& lost);
  void CloseSlice(VcpuTrack& track, uint64_t end_tsc, bool open_at_end);
  void OpenSlice(VcpuTrack& track, Runstate state, uint64_t tsc, uint32_t cpu);
  VcpuTrack& Track(uint32_t domid, uint32_t vcpu);
  CpuTrack& Cpu(uint32_t cpu, uint64_t tsc);
  void AdjustRunQueue(uint32_t cpu, int64_t delta, uint64_t tsc);
  void Finish();
  uint64_t Ns(uint64_t tsc) const {
    return tsc > stats.first_tsc ? clock.ToNs(tsc - stats.first_tsc) : 0;
  }

  TimelineConfig config;
  TraceEventWriter& out;
  tracefmt::TscClock clock;
  TimelineStats stats;
  bool have_origin = false;
  bool finished = false;
  bool lost_process_named = false;
  bool cpus_process_named = false;
  std::unordered_map<uint32_t, VcpuTrack> vcpus;
  std::unordered_set<uint32_t> domains;
  std::vector<CpuTrack> cpus;
};

void TimelineBuilder::Impl::Add(const tracefmt::MergedRecord& m) {
  ++stats.records;
  // Records carry their CPU's last TSC when they have none; until a CPU has had one it is 0 and
  // says nothing about time.
  if (m.tsc == 0) return;
  if (!have_origin) {
    have_origin = true;
    stats.first_tsc = m.tsc;
  }
  stats.last_tsc = std::max(stats.last_tsc, m.tsc);
  Cpu(m.cpu, m.tsc);
  if (const auto rc = tracefmt::AsRunstateChange(m.rec)) {
    OnRunstateChange(m, *rc);
  } else if (const auto lost = tracefmt::AsLostRecords(m.rec)) {
    OnLostRecords(m, *lost);
  }
}

CpuTrack& TimelineBuilder::Impl::Cpu(uint32_t cpu, uint64_t tsc) {
  if (cpu >= cpus.size()) cpus.resize(cpu + 1);
  CpuTrack& track = cpus[cpu];
  if (!track.seen) {
    track.seen = true;
    if (!cpus_process_named) {
      cpus_process_named = true;
      out.ProcessName(kPhysicalCpusPid, "physical CPUs");
      out.ProcessSortIndex(kPhysicalCpusPid, kPhysicalCpusSortIndex);
    }
    out.Counter(kPhysicalCpusPid, fmt::format("cpu{} run queue", cpu), Ns(tsc), "vCPUs", 0);
    ++stats.counter_samples;
  }
  return track;
}

VcpuTrack& TimelineBuilder::Impl::Track(uint32_t domid, uint32_t vcpu) {
  auto [it, inserted] = vcpus.try_emplace(VcpuKey(domid, vcpu));
  if (!inserted) return it->second;
  if (domains.insert(domid).second) {
    const auto name = config.domain_names.find(domid);
    out.ProcessName(domid, DomainLabel(domid, name == config.domain_names.end()
                                                  ? std::string_view{}
                                                  : std::string_view{name->second}));
    out.ProcessSortIndex(domid, domid);
    ++stats.domains;
  }
  out.ThreadName(domid, VcpuTid(domid, vcpu), fmt::format("vCPU {}", vcpu));
  out.ThreadSortIndex(domid, VcpuTid(domid, vcpu), vcpu);
  ++stats.vcpus;
  it->second.domid = domid;
  it->second.vcpu = vcpu;
  return it->second;
}

void TimelineBuilder::Impl::AdjustRunQueue(uint32_t cpu, int64_t delta, uint64_t tsc) {
  CpuTrack& track = Cpu(cpu, tsc);
  track.run_queue += delta;
  out.Counter(kPhysicalCpusPid, fmt::format("cpu{} run queue", cpu), Ns(tsc), "vCPUs",
              track.run_queue);
  ++stats.counter_samples;
}

void TimelineBuilder::Impl::CloseSlice(VcpuTrack& track, uint64_t end_tsc, bool open_at_end) {
  if (end_tsc < track.since_tsc) {
    ++stats.anomalies;
    end_tsc = track.since_tsc;
  }
  const uint64_t start_ns = Ns(track.since_tsc);
  const std::string args = open_at_end
                               ? fmt::format(R"({{"cpu":{},"open_at_end":true}})", track.since_cpu)
                               : fmt::format(R"({{"cpu":{}}})", track.since_cpu);
  out.Complete({.pid = track.domid,
                .tid = VcpuTid(track.domid, track.vcpu),
                .name = tracefmt::RunstateName(track.state),
                .category = "runstate",
                .ts_ns = start_ns,
                .dur_ns = Ns(end_tsc) - start_ns,
                .args_json = args});
  ++stats.slices;
  if (track.queue_cpu != kNoQueue) {
    AdjustRunQueue(static_cast<uint32_t>(track.queue_cpu), -1, end_tsc);
    track.queue_cpu = kNoQueue;
  }
}

void TimelineBuilder::Impl::OpenSlice(VcpuTrack& track, Runstate state, uint64_t tsc,
                                      uint32_t cpu) {
  track.state = state;
  track.since_tsc = tsc;
  track.since_cpu = cpu;
  if (state == Runstate::kRunning) {
    track.has_run = true;
    track.last_run_cpu = cpu;
  }
  if (state == Runstate::kRunnable && track.domid != tracefmt::ev::kIdleDomain) {
    const uint32_t queue = track.has_run ? track.last_run_cpu : cpu;
    track.queue_cpu = static_cast<int32_t>(queue);
    AdjustRunQueue(queue, +1, tsc);
  }
}

void TimelineBuilder::Impl::OnRunstateChange(const tracefmt::MergedRecord& m,
                                             const tracefmt::RunstateChange& rc) {
  ++stats.runstate_changes;
  const bool known = vcpus.contains(VcpuKey(rc.domain, rc.vcpu));
  VcpuTrack& track = Track(rc.domain, rc.vcpu);
  if (known) {
    if (track.state != rc.old_state) ++stats.anomalies;
    CloseSlice(track, m.tsc, /*open_at_end=*/false);
  }
  OpenSlice(track, rc.new_state, std::max(m.tsc, known ? track.since_tsc : m.tsc), m.cpu);
}

void TimelineBuilder::Impl::OnLostRecords(const tracefmt::MergedRecord& m,
                                          const tracefmt::LostRecords& lost) {
  ++stats.lost_reports;
  stats.lost_records += lost.count;
  if (!lost_process_named) {
    lost_process_named = true;
    out.ProcessName(kLostRecordsPid, "lost records");
    out.ProcessSortIndex(kLostRecordsPid, kLostRecordsSortIndex);
  }
  CpuTrack& cpu = Cpu(m.cpu, m.tsc);
  if (!cpu.lost_track_named) {
    cpu.lost_track_named = true;
    out.ThreadName(kLostRecordsPid, m.cpu, fmt::format("cpu{}", m.cpu));
    out.ThreadSortIndex(kLostRecordsPid, m.cpu, m.cpu);
  }
  // The first drop can predate the trace (buffers full since boot) or, in a damaged record,
  // postdate its report: the range shown is clamped into what the trace covers.
  const bool began_before_trace = lost.first_tsc < stats.first_tsc;
  const uint64_t start_tsc =
      std::max(std::min(std::max(lost.first_tsc, stats.first_tsc), m.tsc), cpu.lost_end_tsc);
  const std::string args = fmt::format(
      R"({{"count":{},"cpu":{},"domain":{},"vcpu":{},"first_lost_tsc":{},"report_tsc":{},"began_before_trace":{}}})",
      lost.count, m.cpu, lost.domain, lost.vcpu, lost.first_tsc, m.tsc, began_before_trace);
  out.Complete({.pid = kLostRecordsPid,
                .tid = m.cpu,
                .name = "lost records",
                .category = "loss",
                .ts_ns = Ns(start_tsc),
                .dur_ns = Ns(m.tsc) - Ns(start_tsc),
                .args_json = args});
  out.Instant({.pid = kLostRecordsPid,
               .tid = m.cpu,
               .name = fmt::format("cpu{} lost {} records", m.cpu, lost.count),
               .category = "loss",
               .ts_ns = Ns(start_tsc),
               .scope = 'g',
               .args_json = args});
  cpu.lost_end_tsc = m.tsc;
}

void TimelineBuilder::Impl::Finish() {
  if (finished) return;
  finished = true;
  // Sorted, so the output does not depend on hash order.
  std::vector<uint32_t> keys;
  keys.reserve(vcpus.size());
  for (const auto& [key, track] : vcpus) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (uint32_t key : keys) CloseSlice(vcpus[key], stats.last_tsc, /*open_at_end=*/true);
}

TimelineBuilder::TimelineBuilder(const TimelineConfig& config, TraceEventWriter& out)
    : impl_(std::make_unique<Impl>(config, out)) {}
TimelineBuilder::~TimelineBuilder() = default;

void TimelineBuilder::Add(const tracefmt::MergedRecord& m) {
  impl_->Add(m);
}
void TimelineBuilder::Finish() {
  impl_->Finish();
}
const TimelineStats& TimelineBuilder::stats() const {
  return impl_->stats;
}

nlohmann::json TimelineBuilder::Summary() const {
  const TimelineStats& s = impl_->stats;
  return {
      {"converter", "xenbake-timeline"},
      {"cpu_khz", impl_->config.cpu_khz},
      {"time_origin_tsc", s.first_tsc},
      {"last_tsc", s.last_tsc},
      {"records", s.records},
      {"runstate_changes", s.runstate_changes},
      {"slices", s.slices},
      {"domains", s.domains},
      {"vcpus", s.vcpus},
      {"lost_reports", s.lost_reports},
      {"lost_records", s.lost_records},
      {"anomalies", s.anomalies},
      {"run_queue_definition",
       "guest vCPUs now runnable whose queue is the CPU they last ran on (or, before their "
       "first run, the CPU whose record made them runnable); idle domain excluded"},
  };
}

}  // namespace xenbake::timeline
