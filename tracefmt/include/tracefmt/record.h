// tracefmt/record.h — one Xen trace record, decoded from untrusted bytes.
//
// A record as the hypervisor writes it (xen/include/public/trace.h, `struct t_rec`):
//
//   word 0        header: event id in bits 0–27, number of extra words in bits 28–30,
//                 bit 31 set when a 64-bit TSC follows
//   words 1–2     TSC, low word first (only when bit 31 is set; only 4-byte aligned)
//   then          0–7 extra 32-bit words, the event's data
//
// Xen declares the header as a bitfield struct whose layout is the compiler's choice, so nothing
// here overlays a struct on trace bytes: every field is read with a bounds-checked little-endian
// load. A record's size follows from its header alone, so a reader can always step over records
// it does not understand.
//
//   tracefmt::Record rec;
//   size_t used = tracefmt::DecodeRecord(bytes, rec);   // 0: `bytes` ends inside the record
//   if (used == 0) report_truncation();
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace tracefmt {

static_assert(std::endian::native == std::endian::little,
              "trace records are little-endian; a big-endian port needs byte swaps in Load32");

inline constexpr uint32_t kMaxExtraWords = 7;  // TRACE_EXTRA_MAX
inline constexpr uint32_t kHeaderEventMask = 0x0fffffff;
inline constexpr uint32_t kHeaderExtraShift = 28;
inline constexpr uint32_t kHeaderTscFlag = 0x80000000u;
inline constexpr uint32_t kMinRecordBytes = 4;
inline constexpr uint32_t kMaxRecordBytes = 4 + 8 + 4 * kMaxExtraWords;  // 40

constexpr uint32_t HeaderEvent(uint32_t header) {
  return header & kHeaderEventMask;
}
constexpr uint32_t HeaderExtraWords(uint32_t header) {
  return (header >> kHeaderExtraShift) & 7u;
}
constexpr bool HeaderHasTsc(uint32_t header) {
  return (header & kHeaderTscFlag) != 0;
}
// Branch-free (a decode loop over a mixed stream computes it for every record): bit 31 shifted
// down to bit 3 is the TSC's 8 bytes, bits 28–30 shifted down to bits 2–4 are 4 × extra words.
constexpr uint32_t RecordBytesFromHeader(uint32_t header) {
  return 4u + ((header >> 28) & 8u) + ((header >> 26) & 28u);
}
constexpr uint32_t MakeHeader(uint32_t event, uint32_t extra_words, bool has_tsc) {
  return (event & kHeaderEventMask) | ((extra_words & 7u) << kHeaderExtraShift) |
         (has_tsc ? kHeaderTscFlag : 0u);
}

// Little-endian loads from untrusted memory; the caller has checked the bounds.
inline uint32_t Load32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint64_t Load64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void Store32(std::byte* p, uint32_t v) {
  std::memcpy(p, &v, sizeof v);
}
inline void Store64(std::byte* p, uint64_t v) {
  std::memcpy(p, &v, sizeof v);
}

struct Record {
  uint32_t event = 0;       // 28-bit event id (class, subclass, number)
  uint8_t extra_words = 0;  // how many of `extra` are meaningful, 0–7
  bool has_tsc = false;
  uint64_t tsc = 0;  // 0 when !has_tsc
  std::array<uint32_t, kMaxExtraWords> extra{};

  uint32_t Header() const { return MakeHeader(event, extra_words, has_tsc); }
  uint32_t SizeBytes() const { return 4u + (has_tsc ? 8u : 0u) + 4u * extra_words; }
  std::span<const uint32_t> Data() const { return {extra.data(), extra_words}; }
  bool operator==(const Record&) const = default;
};

// Decodes the record at the start of `bytes`. Returns the bytes it occupies (4–40), or 0 when
// `bytes` ends before the record does. Extra words beyond `extra_words` are left zero.
inline size_t DecodeRecord(std::span<const std::byte> bytes, Record& out) {
  if (bytes.size() < 4) return 0;
  const uint32_t header = Load32(bytes.data());
  const uint32_t size = RecordBytesFromHeader(header);
  if (bytes.size() < size) return 0;
  out.event = HeaderEvent(header);
  out.extra_words = static_cast<uint8_t>(HeaderExtraWords(header));
  out.has_tsc = HeaderHasTsc(header);
  const std::byte* p = bytes.data() + 4;
  if (out.has_tsc) {
    out.tsc = Load64(p);  // lo word then hi word: exactly a little-endian u64
    p += 8;
  } else {
    out.tsc = 0;
  }
  out.extra = {};
  std::memcpy(out.extra.data(), p, 4u * out.extra_words);
  return size;
}

// Encodes `rec` at the start of `out`. Returns the bytes written, or 0 when `out` is too small.
inline size_t EncodeRecord(const Record& rec, std::span<std::byte> out) {
  const uint32_t size = rec.SizeBytes();
  if (out.size() < size || rec.extra_words > kMaxExtraWords) return 0;
  std::byte* p = out.data();
  Store32(p, rec.Header());
  p += 4;
  if (rec.has_tsc) {
    Store64(p, rec.tsc);
    p += 8;
  }
  std::memcpy(p, rec.extra.data(), 4u * rec.extra_words);
  return size;
}

// A record left where it lies (zero-copy): its header and a pointer to its first byte, whose
// whole size (RecordBytesFromHeader(header), 4–40 bytes) the producer has checked to be in bounds.
// Fields are loaded on demand, so a consumer that looks only at the event pays only for the
// header. Valid as long as the bytes behind `p` are (a file mapping, a ring window).
//
//   RecordRef ref{Load32(p), p};
//   if (ref.event() == ev::kWake && ref.extra_words() >= 2) wake(ref.Extra(0), ref.Extra(1));
struct RecordRef {
  uint32_t header = 0;
  const std::byte* p = nullptr;

  uint32_t event() const { return HeaderEvent(header); }
  uint32_t extra_words() const { return HeaderExtraWords(header); }
  bool has_tsc() const { return HeaderHasTsc(header); }
  uint32_t SizeBytes() const { return RecordBytesFromHeader(header); }
  // The record's own TSC; only when has_tsc().
  uint64_t Tsc() const { return Load64(p + 4); }
  // Extra word `i`; only for i < extra_words().
  uint32_t Extra(uint32_t i) const { return Load32(p + 4 + ((header >> 31) << 3) + 4 * i); }
  // Extra word 0, or 0 when there is none, without a branch: the load stays inside the record
  // (one without extra words has its own last word read, then masked away).
  uint32_t FirstExtraOrZero() const {
    const uint32_t none = extra_words() == 0;
    // Where word 0 is; without one, the word before (the TSC's or the header), which exists.
    const uint32_t at = 4u + ((header >> 28) & 8u) - (none << 2);
    return Load32(p + at) & (none - 1u);
  }
  // The decoded copy, exactly as DecodeRecord gives it (extra words beyond extra_words() zero).
  void DecodeTo(Record& rec) const {
    rec.event = event();
    rec.extra_words = static_cast<uint8_t>(extra_words());
    rec.has_tsc = has_tsc();
    const std::byte* data = p + 4;
    rec.tsc = 0;
    if (rec.has_tsc) {
      rec.tsc = Load64(data);
      data += 8;
    }
    rec.extra = {};
    std::memcpy(rec.extra.data(), data, 4u * rec.extra_words);
  }
  Record Decode() const {
    Record rec;
    DecodeTo(rec);
    return rec;
  }
};

// Walks the records of one contiguous run of bytes (a ring window or a file chunk).
//
//   RecordCursor cur(chunk);
//   RecordRef rec;                        // in place: fields loaded only when asked for
//   while (cur.Next(rec)) handle(rec.event(), rec.Tsc(), rec.Extra(0));
//   if (!cur.AtEnd()) report_truncation(cur.offset());
//
// Next(Record&) gives a decoded copy instead, for records that must outlive the bytes.
class RecordCursor {
 public:
  explicit RecordCursor(std::span<const std::byte> bytes) : bytes_(bytes) {}

  // The next record left in place, its whole size checked to lie within the span (so every
  // field RecordRef offers can be loaded). False at the end, or when the remaining bytes hold
  // only part of a record (see AtEnd). Nothing is copied or zeroed: this is the fast walk.
  bool Next(RecordRef& out) {
    const size_t left = bytes_.size() - offset_;
    if (left < kMinRecordBytes) return false;
    const std::byte* p = bytes_.data() + offset_;
    const uint32_t header = Load32(p);
    const uint32_t size = RecordBytesFromHeader(header);
    if (left < size) return false;
    out = RecordRef{header, p};
    offset_ += size;
    return true;
  }
  // The same walk, each record decoded into `out` (extra words beyond extra_words zero).
  bool Next(Record& out) {
    RecordRef ref;
    if (!Next(ref)) return false;
    ref.DecodeTo(out);
    return true;
  }
  // Offset of the next undecoded byte within the span.
  size_t offset() const { return offset_; }
  bool AtEnd() const { return offset_ == bytes_.size(); }
  size_t remaining() const { return bytes_.size() - offset_; }

 private:
  std::span<const std::byte> bytes_;
  size_t offset_ = 0;
};

}  // namespace tracefmt
