#include "simulator/capture_check.h"

#include <fmt/format.h>

#include <optional>
#include <span>

#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "tracefmt/trace_file.h"

namespace simulator {
namespace {

using PerCpu = std::map<uint32_t, std::vector<tracefmt::Record>>;

tracefmt::Result<PerCpu> ReadPerCpu(const std::string& path) {
  auto reader = tracefmt::TraceFileReader::Open(path);
  if (!reader) return reader.error();
  PerCpu out;
  tracefmt::Chunk chunk;
  while (reader->Next(chunk)) {
    tracefmt::RecordCursor cursor(chunk.bytes);
    tracefmt::Record rec;
    std::vector<tracefmt::Record>& records = out[chunk.cpu];
    while (cursor.Next(rec)) records.push_back(rec);
    if (!cursor.AtEnd())
      return tracefmt::MakeError(tracefmt::ErrorCode::kTruncated, path + ": record cut short",
                                 chunk.data_offset() + cursor.offset());
  }
  if (reader->error()) return *reader->error();
  return out;
}

// Where `got` starts in `want`: 0 without a discarded prefix; else aligned on the first record
// with a TSC (TSCs are unique per CPU; WRAP padding without one may repeat).
std::optional<size_t> AlignStart(const std::vector<tracefmt::Record>& got,
                                 const std::vector<tracefmt::Record>& want, bool allow_prefix) {
  if (!allow_prefix || got.empty()) return 0;
  for (size_t j = 0; j < got.size(); ++j) {
    if (!got[j].has_tsc) continue;
    for (size_t k = j; k < want.size(); ++k)
      if (want[k] == got[j]) return k - j;
    return std::nullopt;
  }
  return std::nullopt;
}

uint64_t LostCounts(std::span<const tracefmt::Record> records) {
  uint64_t total = 0;
  for (const tracefmt::Record& r : records)
    if (auto lost = tracefmt::AsLostRecords(r)) total += lost->count;
  return total;
}

}  // namespace

tracefmt::Result<CaptureComparison> CompareCaptures(const std::string& capture_path,
                                                    const std::string& reference_path,
                                                    bool allow_discarded_prefix) {
  auto capture = ReadPerCpu(capture_path);
  if (!capture) return capture.error();
  auto reference = ReadPerCpu(reference_path);
  if (!reference) return reference.error();
  CaptureComparison out;
  for (const auto& [cpu, recs] : *capture) {
    for (const tracefmt::Record& r : recs) {
      if (auto lost = tracefmt::AsLostRecords(r)) {
        out.lost_reported += lost->count;
        ++out.lost_records;
      }
    }
    if (!reference->contains(cpu) && !recs.empty())
      out.problems.push_back(
          fmt::format("cpu {}: {} records the simulator never produced", cpu, recs.size()));
  }
  for (const auto& [cpu, want] : *reference) {
    const auto it = capture->find(cpu);
    const std::vector<tracefmt::Record> none;
    const std::vector<tracefmt::Record>& got = it == capture->end() ? none : it->second;
    out.records_per_cpu[cpu] = got.size();
    std::string& head = out.first_events[cpu];
    for (size_t k = 0; k < std::min<size_t>(got.size(), 3); ++k) {
      if (k) head += ' ';
      head += tracefmt::EventLabel(got[k].event);
    }
    const std::optional<size_t> start = AlignStart(got, want, allow_discarded_prefix);
    if (!start) {
      out.problems.push_back(
          fmt::format("cpu {}: the capture's records are not in the reference", cpu));
      continue;
    }
    const std::span<const tracefmt::Record> want_tail = std::span(want).subspan(*start);
    out.records_discarded += *start;
    out.lost_in_reference += LostCounts(want_tail);
    const size_t common = std::min(got.size(), want_tail.size());
    size_t i = 0;
    while (i < common && got[i] == want_tail[i]) ++i;
    out.records_compared += i;
    if (i < common) {
      out.problems.push_back(
          fmt::format("cpu {}: record {} differs: captured {} tsc {}, produced {} tsc {}", cpu, i,
                      tracefmt::EventLabel(got[i].event), got[i].tsc,
                      tracefmt::EventLabel(want_tail[i].event), want_tail[i].tsc));
    } else if (got.size() != want_tail.size()) {
      out.problems.push_back(fmt::format("cpu {}: captured {} records, produced {} ({})", cpu,
                                         got.size(), want_tail.size(),
                                         got.size() < want_tail.size() ? "missing" : "extra"));
    }
  }
  return out;
}

}  // namespace simulator
