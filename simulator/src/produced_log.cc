#include "simulator/produced_log.h"

#include "tracefmt/trace_file.h"

namespace simulator {

void ProducedLog::OnWritten(uint32_t cpu, std::span<const std::byte> record) {
  std::vector<std::byte>& out = cpus_.at(cpu).written;
  out.insert(out.end(), record.begin(), record.end());
}

void ProducedLog::OnDropped(uint32_t cpu, const tracefmt::Record& record) {
  cpus_.at(cpu).dropped.push_back(record);
}

std::vector<tracefmt::Record> ProducedLog::WrittenRecords(uint32_t cpu) const {
  std::vector<tracefmt::Record> out;
  tracefmt::RecordCursor cursor(WrittenBytes(cpu));
  tracefmt::Record rec;
  while (cursor.Next(rec)) out.push_back(rec);
  return out;
}

tracefmt::Status ProducedLog::WriteXentraceFile(const std::string& path,
                                                uint32_t chunk_bytes) const {
  auto writer = tracefmt::TraceFileWriter::Create(path);
  if (!writer) return writer.error();
  for (uint32_t cpu = 0; cpu < cpus_.size(); ++cpu) {
    const std::span<const std::byte> bytes = WrittenBytes(cpu);
    size_t start = 0;
    while (start < bytes.size()) {
      // Cut at record boundaries only.
      size_t end = start;
      while (end < bytes.size()) {
        const uint32_t size = tracefmt::RecordBytesFromHeader(tracefmt::Load32(bytes.data() + end));
        if (end > start && end + size - start > chunk_bytes) break;
        end += size;
      }
      if (auto st = writer->WriteChunk(cpu, bytes.subspan(start, end - start)); !st) return st;
      start = end;
    }
  }
  return writer->Close();
}

}  // namespace simulator
