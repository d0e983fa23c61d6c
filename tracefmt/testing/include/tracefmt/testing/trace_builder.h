// tracefmt/testing/trace_builder.h — synthetic records and xentrace files for tests, fuzz seeds
// and benchmarks. Header-only; links nothing but tracefmt.
//
//   TraceBuilder t;
//   t.Chunk(/*cpu=*/0, {Rec(ev::kWake, /*tsc=*/100, {0, 1}), Rec(ev::kBlock, 200, {0, 1})});
//   t.Chunk(/*cpu=*/1, {Rec(ev::kSwitch, 150, {0, 0, 32767, 1})});
//   auto reader = TraceFileReader::FromBytes(t.bytes());
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "tracefmt/trace_file.h"

namespace tracefmt::testing {

// A record with a TSC and the given data words (at most 7).
inline Record Rec(uint32_t event, uint64_t tsc, std::initializer_list<uint32_t> data = {}) {
  Record r;
  r.event = event;
  r.has_tsc = true;
  r.tsc = tsc;
  for (uint32_t w : data) r.extra[r.extra_words++] = w;
  return r;
}

// A record without a TSC.
inline Record RecNoTsc(uint32_t event, std::initializer_list<uint32_t> data = {}) {
  Record r = Rec(event, 0, data);
  r.has_tsc = false;
  return r;
}

inline void AppendRecord(std::vector<std::byte>& out, const Record& rec) {
  const size_t at = out.size();
  out.resize(at + rec.SizeBytes());
  EncodeRecord(rec, std::span<std::byte>(out).subspan(at));
}

inline std::vector<std::byte> EncodeAll(std::initializer_list<Record> records) {
  std::vector<std::byte> out;
  for (const Record& r : records) AppendRecord(out, r);
  return out;
}

// Appended from a local word rather than by resize-then-store: GCC 12 at -O3 reports a false
// -Warray-bounds on the memset that resize inlines.
inline void AppendWord(std::vector<std::byte>& out, uint32_t word) {
  std::array<std::byte, 4> bytes;
  Store32(bytes.data(), word);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// Builds a xentrace file in memory.
class TraceBuilder {
 public:
  // A chunk whose header announces exactly its records.
  TraceBuilder& Chunk(uint32_t cpu, std::initializer_list<Record> records) {
    std::vector<std::byte> data;
    for (const Record& r : records) AppendRecord(data, r);
    return RawChunk(cpu, data, static_cast<uint32_t>(data.size()));
  }
  // A chunk header announcing `window_bytes`, followed by `data` as given (which may be shorter
  // or longer than announced: broken inputs).
  TraceBuilder& RawChunk(uint32_t cpu, std::span<const std::byte> data, uint32_t window_bytes) {
    AppendWord(bytes_, ev::kCpuChangeHeader);
    AppendWord(bytes_, cpu);
    AppendWord(bytes_, window_bytes);
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return *this;
  }
  TraceBuilder& Raw(std::span<const std::byte> data) {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return *this;
  }
  // Drops the last `n` bytes (a file cut short).
  TraceBuilder& Truncate(size_t n) {
    bytes_.resize(n > bytes_.size() ? 0 : bytes_.size() - n);
    return *this;
  }
  const std::vector<std::byte>& bytes() const { return bytes_; }
  bool WriteTo(const std::string& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes_.data()),
              static_cast<std::streamsize>(bytes_.size()));
    return static_cast<bool>(out);
  }

 private:
  std::vector<std::byte> bytes_;
};

}  // namespace tracefmt::testing
