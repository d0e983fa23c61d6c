// libFuzzer target over everything in tracefmt that reads untrusted bytes: the record decoder, the
// ring reader with arbitrary cons/prod and budget, the xentrace file reader, the merge and the
// summary. It checks invariants, not just the absence of crashes: bounds are honoured, progress is
// made, the merge delivers what file order delivers, and errors carry an offset inside the input.
//
// Build and run: see tests/README.md (Fuzz tier).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "tracefmt/events.h"
#include "tracefmt/fields.h"
#include "tracefmt/merge.h"
#include "tracefmt/record.h"
#include "tracefmt/ring.h"
#include "tracefmt/summary.h"
#include "tracefmt/trace_file.h"

namespace {

using tracefmt::Record;

void Check(bool condition) {
  if (!condition) std::abort();
}

void FuzzRecordCursor(std::span<const std::byte> bytes) {
  tracefmt::RecordCursor cursor(bytes);
  Record rec;
  while (cursor.Next(rec)) {
    Check(rec.extra_words <= tracefmt::kMaxExtraWords);
    (void)tracefmt::DecodeFields(rec);
    (void)tracefmt::EventName(rec.event);
  }
  Check(cursor.offset() <= bytes.size());
  Check(cursor.remaining() < tracefmt::kMaxRecordBytes);
}

// The first 12 bytes choose cons, prod and the budget; the rest, cut to a multiple of 4, is the
// data area (Xen's is always word-sized).
void FuzzRing(std::span<const std::byte> bytes) {
  if (bytes.size() < 16) return;
  const uint32_t cons = tracefmt::Load32(bytes.data());
  const uint32_t prod = tracefmt::Load32(bytes.data() + 4);
  const uint32_t budget = tracefmt::Load32(bytes.data() + 8) & 0xffff;
  const std::span<const std::byte> data = bytes.subspan(12, (bytes.size() - 12) & ~size_t{3});
  const uint32_t data_size = static_cast<uint32_t>(data.size());
  uint64_t run_bytes = 0;
  uint64_t records = 0;
  const tracefmt::RingDrain d = tracefmt::DrainRing(
      data, cons, prod, budget,
      [&](std::span<const std::byte> run) {
        Check(run.data() >= data.data() && run.data() + run.size() <= data.data() + data.size());
        run_bytes += run.size();
      },
      [&](const Record&) { ++records; });
  Check(run_bytes == d.bytes_consumed);
  Check(records == d.records);
  if (d.ok()) {
    Check(d.new_cons < 2 * data_size);
    Check(d.bytes_consumed + d.bytes_left == tracefmt::RingUnconsumed(data_size, cons, prod));
    if (cons != prod) Check(d.bytes_consumed > 0);  // progress
  }
}

void FuzzFile(std::span<const std::byte> bytes) {
  tracefmt::TraceFileReader reader = tracefmt::TraceFileReader::FromBytes(bytes);
  const tracefmt::TraceSummary summary = tracefmt::SummarizeTrace(reader);
  for (const tracefmt::Error& e : summary.anomalies) Check(e.offset <= bytes.size());
  reader.Rewind();
  tracefmt::MergedTraceReader merged(reader);
  tracefmt::MergedRecord m;
  uint64_t count = 0;
  while (merged.Next(m)) {
    Check(m.file_offset < bytes.size());
    ++count;
  }
  // Ring records per CPU (a ring record may itself carry CPU_CHANGE's event id in a forged file,
  // so the framing count cannot be subtracted from the total).
  uint64_t ring_records = 0;
  for (const auto& [cpu, c] : summary.per_cpu) ring_records += c.records;
  Check(count == ring_records);
  Check(merged.error().has_value() == !summary.anomalies.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  FuzzRecordCursor(bytes);
  FuzzRing(bytes);
  FuzzFile(bytes);
  return 0;
}
