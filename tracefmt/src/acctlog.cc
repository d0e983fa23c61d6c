#include "tracefmt/acctlog.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cstring>
#include <type_traits>

#include "tracefmt/trace_file.h"

namespace tracefmt {

namespace {

// Bytes of the fixed part of each payload, before the name (domain) and the counters.
constexpr size_t kDomainFixedBytes = 2 + 2 + 4 + 4 + 4 + 8;
constexpr size_t kCpuFixedBytes = 2 + 2 + 4;
constexpr size_t kHostFixedBytes = 2 + 2;
constexpr size_t kRunFixedBytes = 2 + 2 + 4 + 4;
constexpr size_t kHeaderFixedBytes = 8 + 2 + 2 + 4 + 8 + 8 + 2;

// Little-endian appends; the format is defined byte by byte, never by a struct's layout.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::byte>& out) : out_(out) {}
  void U16(uint16_t v) { Le(v); }
  void U32(uint32_t v) { Le(v); }
  void U64(uint64_t v) { Le(v); }
  // resize + memcpy rather than vector::insert: GCC 12 at -O3 reports a false
  // -Wstringop-overflow for a range insert of bytes.
  void Bytes(std::span<const std::byte> b) {
    if (b.empty()) return;
    const size_t at = out_.size();
    out_.resize(at + b.size());
    std::memcpy(out_.data() + at, b.data(), b.size());
  }
  void Text(std::string_view s) { Bytes(std::as_bytes(std::span(s.data(), s.size()))); }

 private:
  template <typename T>
  void Le(T v) {
    for (size_t i = 0; i < sizeof(T); ++i) out_.push_back(std::byte(v >> (8 * i)));
  }
  std::vector<std::byte>& out_;
};

// Bounds-checked little-endian reads over a payload; `ok()` turns false on any overrun.
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> in) : in_(in) {}
  uint16_t U16() { return Le<uint16_t>(); }
  uint32_t U32() { return Le<uint32_t>(); }
  uint64_t U64() { return Le<uint64_t>(); }
  std::string Text(size_t n) {
    if (!Take(n)) return {};
    return std::string(reinterpret_cast<const char*>(in_.data() + pos_ - n), n);
  }
  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }

 private:
  bool Take(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  template <typename T>
  T Le() {
    if (!Take(sizeof(T))) return 0;
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      v |= T(std::to_integer<T>(in_[pos_ - sizeof(T) + i]) << (8 * i));
    return v;
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

uint32_t Load32Le(const std::byte* p) {
  ByteReader r({p, 4});
  return r.U32();
}

std::string_view Clip(std::string_view s, size_t max) {
  return s.substr(0, std::min(s.size(), max));
}

template <typename Rec>
void WriteCounters(const Rec& rec, ByteWriter& w) {
  for (auto member : Rec::kCounters) w.U64(rec.*member);
}

// Reads `count` counters; those this version does not know are skipped, those an older writer
// did not write stay zero.
template <typename Rec>
void ReadCounters(Rec& rec, size_t count, ByteReader& r) {
  for (size_t i = 0; i < count; ++i) {
    const uint64_t v = r.U64();
    if (i < Rec::kCounters.size()) rec.*(Rec::kCounters[i]) = v;
  }
}

void EncodePayload(const AcctDomainRecord& d, ByteWriter& w) {
  const std::string_view name = Clip(d.name, kAcctMaxNameBytes);
  w.U16(uint16_t(AcctDomainRecord::kCounters.size()));
  w.U16(uint16_t(name.size()));
  w.U32(d.domid);
  w.U32(d.vcpus);
  w.U32(uint32_t(d.final_reason));
  w.U64(d.instance);
  w.Text(name);
  WriteCounters(d, w);
}
void EncodePayload(const AcctCpuRecord& c, ByteWriter& w) {
  w.U16(uint16_t(AcctCpuRecord::kCounters.size()));
  w.U16(0);
  w.U32(c.cpu);
  WriteCounters(c, w);
}
void EncodePayload(const AcctHostRecord& h, ByteWriter& w) {
  w.U16(uint16_t(AcctHostRecord::kCounters.size()));
  w.U16(0);
  WriteCounters(h, w);
}
void EncodePayload(const AcctRunRecord& run, ByteWriter& w) {
  w.U16(uint16_t(AcctRunRecord::kCounters.size()));
  w.U16(0);
  w.U32(uint32_t(run.phase));
  w.U32(run.pid);
  WriteCounters(run, w);
}
void EncodePayload(const AcctUnknownRecord& u, ByteWriter& w) {
  w.Bytes(u.payload);
}

AcctTag TagOf(const AcctRecord& record) {
  struct Visitor {
    AcctTag operator()(const AcctDomainRecord& d) const {
      return d.is_final() ? AcctTag::kDomainFinal : AcctTag::kDomainInterval;
    }
    AcctTag operator()(const AcctCpuRecord&) const { return AcctTag::kCpuInterval; }
    AcctTag operator()(const AcctHostRecord&) const { return AcctTag::kHostInterval; }
    AcctTag operator()(const AcctRunRecord&) const { return AcctTag::kRun; }
    AcctTag operator()(const AcctUnknownRecord& u) const { return AcctTag(u.tag); }
  };
  return std::visit(Visitor{}, record);
}

Error PayloadError(std::string_view what, uint64_t offset) {
  return MakeError(ErrorCode::kCorrupt, fmt::format("{} record payload is malformed", what),
                   offset);
}

// Decodes a payload whose frame CRCs already matched; a mismatch here is a writer bug or a
// collision, reported as corruption.
Result<AcctRecord> DecodePayload(uint16_t tag, std::span<const std::byte> payload,
                                 uint64_t offset) {
  ByteReader r(payload);
  switch (AcctTag(tag)) {
    case AcctTag::kDomainInterval:
    case AcctTag::kDomainFinal: {
      if (payload.size() < kDomainFixedBytes) return PayloadError("domain", offset);
      AcctDomainRecord d;
      const uint16_t counters = r.U16();
      const uint16_t name_len = r.U16();
      d.domid = r.U32();
      d.vcpus = r.U32();
      d.final_reason = AcctFinalReason(r.U32());
      d.instance = r.U64();
      d.name = r.Text(name_len);
      ReadCounters(d, counters, r);
      const bool final_tag = AcctTag(tag) == AcctTag::kDomainFinal;
      if (!r.ok() || r.remaining() != 0 || final_tag != d.is_final()) {
        return PayloadError("domain", offset);
      }
      return AcctRecord(std::move(d));
    }
    case AcctTag::kCpuInterval: {
      if (payload.size() < kCpuFixedBytes) return PayloadError("CPU", offset);
      AcctCpuRecord c;
      const uint16_t counters = r.U16();
      r.U16();
      c.cpu = r.U32();
      ReadCounters(c, counters, r);
      if (!r.ok() || r.remaining() != 0) return PayloadError("CPU", offset);
      return AcctRecord(c);
    }
    case AcctTag::kHostInterval: {
      if (payload.size() < kHostFixedBytes) return PayloadError("host", offset);
      AcctHostRecord h;
      const uint16_t counters = r.U16();
      r.U16();
      ReadCounters(h, counters, r);
      if (!r.ok() || r.remaining() != 0) return PayloadError("host", offset);
      return AcctRecord(h);
    }
    case AcctTag::kRun: {
      if (payload.size() < kRunFixedBytes) return PayloadError("run", offset);
      AcctRunRecord run;
      const uint16_t counters = r.U16();
      r.U16();
      const uint32_t phase = r.U32();
      run.phase = AcctRunPhase(phase);
      run.pid = r.U32();
      ReadCounters(run, counters, r);
      const bool known_phase =
          phase >= uint32_t(AcctRunPhase::kStart) && phase <= uint32_t(AcctRunPhase::kEnd);
      if (!r.ok() || r.remaining() != 0 || !known_phase) return PayloadError("run", offset);
      return AcctRecord(run);
    }
  }
  return AcctRecord(AcctUnknownRecord{tag, {payload.begin(), payload.end()}});
}

bool AllZero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace

uint32_t AcctCrc32c(std::span<const std::byte> bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

std::vector<std::byte> EncodeAcctHeader(const AcctLogHeader& header) {
  const std::string_view host = Clip(header.host, kAcctMaxHostBytes);
  std::vector<std::byte> out;
  ByteWriter w(out);
  w.Text(std::string_view(kAcctLogMagic.data(), kAcctLogMagic.size()));
  w.U16(header.major);
  w.U16(header.minor);
  w.U32(uint32_t(kHeaderFixedBytes + host.size() + 4));
  w.U64(header.created_realtime_ns);
  w.U64(header.cpu_khz);
  w.U16(uint16_t(host.size()));
  w.Text(host);
  w.U32(AcctCrc32c(out));
  return out;
}

void AppendAcctRecord(const AcctRecord& record, std::vector<std::byte>& out) {
  const size_t frame = out.size();
  ByteWriter w(out);
  w.U16(uint16_t(TagOf(record)));
  w.U16(0);
  w.U32(0);  // payload length, patched below
  w.U32(0);  // header CRC, patched below
  const size_t payload = out.size();
  std::visit([&w](const auto& r) { EncodePayload(r, w); }, record);
  const uint32_t payload_bytes = uint32_t(out.size() - payload);
  for (size_t i = 0; i < 4; ++i) out[frame + 4 + i] = std::byte(payload_bytes >> (8 * i));
  const uint32_t header_crc = AcctCrc32c(std::span(out).subspan(frame, 8));
  for (size_t i = 0; i < 4; ++i) out[frame + 8 + i] = std::byte(header_crc >> (8 * i));
  w.U32(AcctCrc32c(std::span(out).subspan(payload)));
}

std::vector<std::byte> EncodeAcctRecord(const AcctRecord& record) {
  std::vector<std::byte> out;
  AppendAcctRecord(record, out);
  return out;
}

Result<AcctParsedHeader> ParseAcctHeader(std::span<const std::byte> file) {
  if (file.size() < kHeaderFixedBytes + 4) {
    return MakeError(
        ErrorCode::kTruncated,
        fmt::format("file is {} bytes, shorter than an accounting log header", file.size()), 0);
  }
  if (std::memcmp(file.data(), kAcctLogMagic.data(), kAcctLogMagic.size()) != 0) {
    return MakeError(ErrorCode::kCorrupt, "not an accounting log (bad magic)", 0);
  }
  ByteReader r(file.subspan(kAcctLogMagic.size()));
  AcctParsedHeader parsed;
  AcctLogHeader& h = parsed.header;
  h.major = r.U16();
  h.minor = r.U16();
  parsed.header_bytes = r.U32();
  h.created_realtime_ns = r.U64();
  h.cpu_khz = r.U64();
  const uint16_t host_len = r.U16();
  if (h.major != kAcctLogMajor) {
    return MakeError(ErrorCode::kUnsupported,
                     fmt::format("accounting log version {}.{}, this reader reads {}.x", h.major,
                                 h.minor, kAcctLogMajor),
                     8);
  }
  if (parsed.header_bytes != kHeaderFixedBytes + host_len + 4 || host_len > kAcctMaxHostBytes) {
    return MakeError(ErrorCode::kCorrupt, "accounting log header sizes disagree", 12);
  }
  if (file.size() < parsed.header_bytes) {
    return MakeError(ErrorCode::kTruncated, "file ends inside the accounting log header", 0);
  }
  h.host = r.Text(host_len);
  const uint32_t stored_crc = Load32Le(file.data() + parsed.header_bytes - 4);
  if (stored_crc != AcctCrc32c(file.first(parsed.header_bytes - 4))) {
    return MakeError(ErrorCode::kCorrupt, "accounting log header checksum mismatch", 0);
  }
  return parsed;
}

Result<AcctRecord> ParseAcctRecord(std::span<const std::byte> file, uint64_t offset,
                                   uint64_t& next_offset) {
  const std::span<const std::byte> rest = file.subspan(offset);
  // A crash can leave the file longer than the data that reached it, the rest zeros: that is an
  // unfinished tail too, not damage to something that was written.
  auto truncated = [&](std::string message) -> Error {
    return MakeError(ErrorCode::kTruncated, std::move(message), offset);
  };
  if (rest.size() < kAcctFrameHeaderBytes) {
    return truncated(fmt::format("log ends inside a record header ({} of {} bytes)", rest.size(),
                                 kAcctFrameHeaderBytes));
  }
  ByteReader r(rest);
  const uint16_t tag = r.U16();
  r.U16();
  const uint32_t payload_bytes = r.U32();
  const uint32_t header_crc = r.U32();
  if (header_crc != AcctCrc32c(rest.first(8))) {
    if (AllZero(rest)) return truncated("log ends in zeros (a tail never written)");
    return MakeError(ErrorCode::kCorrupt, "record header checksum mismatch", offset);
  }
  if (payload_bytes > kAcctMaxPayloadBytes) {
    return MakeError(ErrorCode::kCorrupt,
                     fmt::format("record claims {} payload bytes", payload_bytes), offset);
  }
  const uint64_t frame_bytes =
      uint64_t{kAcctFrameHeaderBytes} + payload_bytes + kAcctFrameTrailerBytes;
  if (rest.size() < frame_bytes) {
    return truncated(
        fmt::format("log ends inside a record ({} of {} bytes)", rest.size(), frame_bytes));
  }
  const std::span<const std::byte> payload = rest.subspan(kAcctFrameHeaderBytes, payload_bytes);
  const uint32_t payload_crc = Load32Le(payload.data() + payload.size());
  if (payload_crc != AcctCrc32c(payload)) {
    return MakeError(ErrorCode::kCorrupt, "record payload checksum mismatch", offset);
  }
  next_offset = offset + frame_bytes;
  return DecodePayload(tag, payload, offset);
}

Result<AcctLogReader> AcctLogReader::Open(const std::string& path) {
  Result<std::vector<std::byte>> bytes =
      ReadRegularFile(path, kAcctMaxReadBytes, "an accounting log");
  if (!bytes) return bytes.error();
  return FromBytes(std::move(*bytes));
}

Result<AcctLogReader> AcctLogReader::FromBytes(std::vector<std::byte> bytes) {
  Result<AcctParsedHeader> parsed = ParseAcctHeader(bytes);
  if (!parsed) return parsed.error();
  AcctLogReader reader;
  reader.bytes_ = std::move(bytes);
  reader.header_ = std::move(parsed->header);
  reader.offset_ = parsed->header_bytes;
  return reader;
}

bool AcctLogReader::Next(AcctRecord& out, uint64_t* record_offset) {
  if (error_ || offset_ >= bytes_.size()) return false;
  uint64_t next = offset_;
  Result<AcctRecord> record = ParseAcctRecord(bytes_, offset_, next);
  if (!record) {
    error_ = record.error();
    return false;
  }
  if (record_offset != nullptr) *record_offset = offset_;
  out = std::move(*record);
  offset_ = next;
  return true;
}

namespace {
AcctLogContents Collect(AcctLogReader& reader) {
  AcctLogContents contents;
  contents.header = reader.header();
  AcctRecord record;
  while (reader.Next(record)) contents.records.push_back(std::move(record));
  contents.stop = reader.error();
  contents.valid_bytes = reader.valid_bytes();
  return contents;
}
}  // namespace

Result<AcctLogContents> ReadAcctLog(std::span<const std::byte> bytes) {
  Result<AcctLogReader> reader = AcctLogReader::FromBytes({bytes.begin(), bytes.end()});
  if (!reader) return reader.error();
  return Collect(*reader);
}

Result<AcctLogContents> ReadAcctLogFile(const std::string& path) {
  Result<AcctLogReader> reader = AcctLogReader::Open(path);
  if (!reader) return reader.error();
  return Collect(*reader);
}

}  // namespace tracefmt
