#include "tracefmt/summary.h"

#include <fmt/format.h>

#include <algorithm>

#include "tracefmt/events.h"

namespace tracefmt {

CpuSummary& SummaryBuilder::Cpu(uint32_t cpu) {
  if (cpu >= cpus_.size()) {
    cpus_.resize(cpu + 1);
    cpu_seen_.resize(cpu + 1);
  }
  cpu_seen_[cpu] = true;
  return cpus_[cpu];
}

void SummaryBuilder::AddChunk(const Chunk& chunk) {
  ++Cpu(chunk.cpu).chunks;
  ++event_counts_[ev::kCpuChange];
}

void SummaryBuilder::AddRecord(uint32_t cpu, const Record& rec) {
  CpuSummary& c = Cpu(cpu);
  ++c.records;
  if (rec.has_tsc) {
    if (!c.has_tsc) {
      c.has_tsc = true;
      c.first_tsc = rec.tsc;
    } else if (rec.tsc < c.last_tsc) {
      ++c.tsc_backwards;
    }
    c.last_tsc = rec.tsc;
  }
  ++event_counts_[IsRunstateChange(rec.event) ? ev::kRunstateChange : rec.event];
  if (rec.event == ev::kLostRecords && rec.extra_words >= 1) summary_.lost_records += rec.extra[0];
}

void SummaryBuilder::AddAnomaly(Error error) {
  summary_.anomalies.push_back(std::move(error));
}

TraceSummary SummaryBuilder::Snapshot() const {
  TraceSummary s = summary_;
  for (uint32_t cpu = 0; cpu < cpus_.size(); ++cpu) {
    if (cpu_seen_[cpu]) s.per_cpu[cpu] = cpus_[cpu];
  }
  for (const auto& [event, count] : event_counts_) {
    s.per_event[event] = count;
    s.per_class[EventClassName(event)] += count;
    s.records += count;
  }
  auto count_of = [&](uint32_t event) {
    auto it = s.per_event.find(event);
    return it == s.per_event.end() ? uint64_t{0} : it->second;
  };
  s.cpu_change_records = count_of(ev::kCpuChange);
  s.wrap_records = count_of(ev::kWrapBuffer);
  s.lost_records_events = count_of(ev::kLostRecords);
  s.runstate_changes = count_of(ev::kRunstateChange);
  s.switch_infprev = count_of(ev::kSwitchInfPrev);
  s.switch_infnext = count_of(ev::kSwitchInfNext);
  std::stable_sort(s.anomalies.begin(), s.anomalies.end(),
                   [](const Error& a, const Error& b) { return a.offset < b.offset; });
  return s;
}

TraceSummary SummarizeTrace(TraceFileReader& reader) {
  SummaryBuilder builder;
  builder.SetFileBytes(reader.size());
  Chunk chunk;
  Record rec;
  while (reader.Next(chunk)) {
    builder.AddChunk(chunk);
    RecordCursor cursor(chunk.bytes);
    while (cursor.Next(rec)) builder.AddRecord(chunk.cpu, rec);
    if (!cursor.AtEnd()) {
      builder.AddAnomaly(RecordCutShortError(chunk, cursor.offset()));
    }
  }
  if (reader.error()) builder.AddAnomaly(*reader.error());
  return builder.Snapshot();
}

}  // namespace tracefmt
