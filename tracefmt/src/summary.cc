#include "tracefmt/summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

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

void SummaryBuilder::EventCounts::Insert(uint32_t key, uint64_t count) {
  if (2 * (used_ + 1) > slots_.size()) {  // keep the table at most half full
    std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(2 * slots_.size()));
    used_ = 0;
    for (const Slot& s : old)
      if (s.key != 0) Insert(s.key, s.count);
  }
  size_t i = Hash(key);
  while (slots_[i].key != 0) i = (i + 1) & (slots_.size() - 1);
  slots_[i] = {key, count};
  ++used_;
}

void SummaryBuilder::AddChunk(const Chunk& chunk) {
  ++Cpu(chunk.cpu).chunks;
  event_counts_.Increment(ev::kCpuChange);
}

inline void SummaryBuilder::CountTsc(CpuSummary& c, uint64_t tsc) {
  if (!c.has_tsc) {
    c.has_tsc = true;
    c.first_tsc = tsc;
  } else if (tsc < c.last_tsc) {
    ++c.tsc_backwards;
  }
  c.last_tsc = tsc;
}

void SummaryBuilder::AddRecord(uint32_t cpu, const Record& rec) {
  CpuSummary& c = Cpu(cpu);
  ++c.records;
  if (rec.has_tsc) CountTsc(c, rec.tsc);
  event_counts_.Increment(IsRunstateChange(rec.event) ? ev::kRunstateChange : rec.event);
  if (rec.event == ev::kLostRecords && rec.extra_words >= 1) summary_.lost_records += rec.extra[0];
}

void SummaryBuilder::AddRecord(uint32_t cpu, RecordRef rec) {
  CpuSummary& c = Cpu(cpu);
  ++c.records;
  if (rec.has_tsc()) CountTsc(c, rec.Tsc());
  const uint32_t event = rec.event();
  event_counts_.Increment(IsRunstateChange(event) ? ev::kRunstateChange : event);
  if (event == ev::kLostRecords && rec.extra_words() >= 1) summary_.lost_records += rec.Extra(0);
}

void SummaryBuilder::AddAnomaly(Error error) {
  summary_.anomalies.push_back(std::move(error));
}

TraceSummary SummaryBuilder::Snapshot() const {
  TraceSummary s = summary_;
  for (uint32_t cpu = 0; cpu < cpus_.size(); ++cpu) {
    if (cpu_seen_[cpu]) s.per_cpu[cpu] = cpus_[cpu];
  }
  event_counts_.ForEach([&](uint32_t event, uint64_t count) {
    s.per_event[event] = count;
    s.per_class[EventClassName(event)] += count;
    s.records += count;
  });
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
  while (reader.Next(chunk)) {
    builder.AddChunk(chunk);
    // Records are counted where they lie: only the header, the TSC and LOST_RECORDS' count are
    // read.
    const std::byte* data = chunk.bytes.data();
    const size_t size = chunk.bytes.size();
    size_t pos = 0;
    while (size - pos >= 4) {
      const uint32_t header = Load32(data + pos);
      const uint32_t bytes = RecordBytesFromHeader(header);
      if (size - pos < bytes) break;
      builder.AddRecord(chunk.cpu, RecordRef{header, data + pos});
      pos += bytes;
    }
    if (pos != size) builder.AddAnomaly(RecordCutShortError(chunk, pos));
  }
  if (reader.error()) builder.AddAnomaly(*reader.error());
  return builder.Snapshot();
}

}  // namespace tracefmt
