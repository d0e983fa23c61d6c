#include "simulator/capture_check.h"

#include <fmt/format.h>

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

}  // namespace

tracefmt::Result<CaptureComparison> CompareCaptures(const std::string& capture_path,
                                                    const std::string& reference_path) {
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
    const size_t common = std::min(got.size(), want.size());
    size_t i = 0;
    while (i < common && got[i] == want[i]) ++i;
    out.records_compared += i;
    if (i < common) {
      out.problems.push_back(
          fmt::format("cpu {}: record {} differs: captured {} tsc {}, produced {} tsc {}", cpu, i,
                      tracefmt::EventLabel(got[i].event), got[i].tsc,
                      tracefmt::EventLabel(want[i].event), want[i].tsc));
    } else if (got.size() != want.size()) {
      out.problems.push_back(fmt::format("cpu {}: captured {} records, produced {} ({})", cpu,
                                         got.size(), want.size(),
                                         got.size() < want.size() ? "missing" : "extra"));
    }
  }
  return out;
}

}  // namespace simulator
