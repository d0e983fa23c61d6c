// tracefmt/ring.h — the hypervisor's per-CPU trace ring, read safely.
//
// Memory layout (xen/include/public/trace.h, xen/common/trace.c):
//
//   t_info area   u16 tbuf_size (pages per CPU); u16 mfn_offset[cpu] (0 = that CPU has no buffer;
//                 otherwise the index, in u32 units from the start of t_info, of that CPU's list of
//                 tbuf_size u32 page frame numbers)
//   per CPU       tbuf_size pages: u32 cons, u32 prod, then data_size = pages*4096 - 8 bytes
//
// The producer (Xen) appends records at `prod`; the consumer (us) reads from `cons` and publishes
// the new `cons`. Both run modulo 2*data_size, so cons == prod means empty and a difference of
// data_size means full. Records never straddle the end of the data area: Xen pads with a
// TRC_TRACE_WRAP_BUFFER record instead. `prod` (and `cons`, which another process could have
// written) are untrusted: an unaligned or out-of-range value is reported and never followed.
//
//   RingDrain d = DrainRing(data_area, cons_untrusted, prod_untrusted, /*max_bytes=*/1 << 20,
//                           [&](std::span<const std::byte> run) { capture.Write(cpu, run); },
//                           [&](const Record& rec) { engine.Add(cpu, rec); });
//   publish_cons(d.new_cons);
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

#include "tracefmt/record.h"

namespace tracefmt {

inline constexpr uint32_t kXenPageSize = 4096;
inline constexpr uint32_t kTbufHeaderBytes = 8;  // struct t_buf: u32 cons, u32 prod

// Bytes of record data in a per-CPU buffer of `pages` pages.
constexpr uint32_t RingDataSize(uint32_t pages) {
  return pages * kXenPageSize - kTbufHeaderBytes;
}
// Xen raises VIRQ_TBUF when a buffer goes from below this many unconsumed bytes to at least it.
constexpr uint32_t RingHighWater(uint32_t data_size) {
  return data_size >> 1;
}

// Unconsumed bytes for valid pointers (both < 2*data_size).
constexpr uint32_t RingUnconsumed(uint32_t data_size, uint32_t cons, uint32_t prod) {
  return prod >= cons ? prod - cons : prod + 2 * data_size - cons;
}

enum class RingAnomaly : uint8_t {
  kNone,
  kProdMisaligned,  // prod not a multiple of 4: nothing read, cons left as it was
  kProdOutOfRange,  // prod >= 2*data_size: nothing read, cons left as it was
  kConsMisaligned,  // cons not a multiple of 4: window skipped, cons reset to prod
  kConsOutOfRange,  // cons >= 2*data_size: window skipped, cons reset to prod
  kOverfull,        // prod - cons > data_size: window skipped, cons reset to prod
  kCorruptRecord,   // a record runs past the end of the data area or past prod: rest skipped
};
std::string_view RingAnomalyName(RingAnomaly anomaly);

struct RingDrain {
  uint32_t new_cons = 0;        // what to publish as cons
  uint32_t bytes_consumed = 0;  // bytes of whole records delivered
  uint32_t bytes_skipped = 0;   // bytes given up because of an anomaly
  uint32_t bytes_left = 0;      // unconsumed bytes left for the next pass (max_bytes reached)
  uint64_t records = 0;
  RingAnomaly anomaly = RingAnomaly::kNone;
  bool ok() const { return anomaly == RingAnomaly::kNone; }
};

// Checks untrusted ring pointers. kNone when both are aligned and in range and the window is no
// larger than the data area.
constexpr RingAnomaly CheckRingPointers(uint32_t data_size, uint32_t cons, uint32_t prod) {
  if (prod & 3u) return RingAnomaly::kProdMisaligned;
  if (prod >= 2 * data_size) return RingAnomaly::kProdOutOfRange;
  if (cons & 3u) return RingAnomaly::kConsMisaligned;
  if (cons >= 2 * data_size) return RingAnomaly::kConsOutOfRange;
  if (RingUnconsumed(data_size, cons, prod) > data_size) return RingAnomaly::kOverfull;
  return RingAnomaly::kNone;
}

namespace internal {
// Delivers the whole records at the start of `run` that fit in `budget` bytes. `run` holds the
// first bytes of a contiguous stretch of `stretch_len` bytes of the data area (all of it, or a
// copy of its first part); a record whose size runs past the stretch is corruption, one that
// runs past `run` only (the copy stopped at the budget) ends the delivery as the budget does.
// Returns the bytes delivered; sets `corrupt` when a record's size runs past the stretch.
// `run.size()` is a multiple of 4, so a header is always readable.
template <typename OnRecord>
uint32_t DeliverRun(std::span<const std::byte> run, uint32_t stretch_len, uint32_t budget,
                    bool& corrupt, uint64_t& records, OnRecord& on_record) {
  uint32_t off = 0;
  const uint32_t len = static_cast<uint32_t>(run.size());
  Record rec;
  while (off < len) {
    const uint32_t header = Load32(run.data() + off);
    const uint32_t size = RecordBytesFromHeader(header);
    if (size > stretch_len - off) {
      corrupt = true;
      break;
    }
    if (off > 0 && off + size > budget) break;  // the first record always goes: progress
    // Never true when `run` reaches as far as the budget lets a record go (DrainRingVia's copy
    // does); it keeps the walk inside `run` whatever the caller gives.
    if (size > len - off) break;
    // A consumer that takes a RecordRef reads the record in place: no decoded copy.
    if constexpr (std::is_invocable_v<OnRecord&, RecordRef>) {
      on_record(RecordRef{header, run.data() + off});
    } else {
      DecodeRecord(run.subspan(off, size), rec);
      on_record(rec);
    }
    ++records;
    off += size;
  }
  return off;
}

// DrainRing and DrainRingCopy: `stage(span)` gives the bytes to walk for a stretch of the data
// area (the stretch itself, or a private copy of it); the walk and `on_run` see those bytes.
template <typename Stage, typename OnRun, typename OnRecord>
RingDrain DrainRingVia(std::span<const std::byte> data, uint32_t cons_untrusted,
                       uint32_t prod_untrusted, uint32_t max_bytes, Stage& stage, OnRun& on_run,
                       OnRecord& on_record) {
  RingDrain out;
  const uint32_t data_size = static_cast<uint32_t>(data.size());
  out.anomaly = CheckRingPointers(data_size, cons_untrusted, prod_untrusted);
  switch (out.anomaly) {
    case RingAnomaly::kNone:
      break;
    case RingAnomaly::kProdMisaligned:
    case RingAnomaly::kProdOutOfRange:
      out.new_cons = cons_untrusted;
      return out;
    default:  // cons is ours to fix: resynchronise at prod, giving up what lies between
      out.new_cons = prod_untrusted;
      if (out.anomaly == RingAnomaly::kOverfull)
        out.bytes_skipped = RingUnconsumed(data_size, cons_untrusted, prod_untrusted);
      return out;
  }
  const uint32_t cons = cons_untrusted;
  const uint32_t prod = prod_untrusted;
  const uint32_t total = RingUnconsumed(data_size, cons, prod);
  const uint32_t start = cons % data_size;
  // The window is one run, or two when it wraps past the end of the data area.
  const uint32_t first_len = std::min(total, data_size - start);
  const uint32_t second_len = total - first_len;
  const uint32_t budget = std::max(max_bytes, kMaxRecordBytes);

  bool corrupt = false;
  uint32_t done = 0;
  // Returns true when the whole run was delivered.
  auto deliver = [&](uint32_t offset, uint32_t len) {
    if (done >= budget) return false;
    // No more than the budget can deliver: up to it, or one record when less is left (the first
    // record always goes). A record past this is past the budget too.
    const uint32_t reach = std::min(len, std::max(budget - done, kMaxRecordBytes));
    const std::span<const std::byte> bytes = stage(data.subspan(offset, reach));
    const uint32_t whole =
        internal::DeliverRun(bytes, len, budget - done, corrupt, out.records, on_record);
    if (whole > 0) on_run(bytes.first(whole));
    done += whole;
    return whole == len;
  };
  if (deliver(start, first_len) && second_len > 0) deliver(0, second_len);

  out.bytes_consumed = done;
  if (corrupt) {
    out.anomaly = RingAnomaly::kCorruptRecord;
    out.bytes_skipped = total - done;
    out.new_cons = prod;
  } else {
    out.bytes_left = total - done;
    const uint64_t next = uint64_t{cons} + done;
    out.new_cons = static_cast<uint32_t>(next >= 2ull * data_size ? next - 2ull * data_size : next);
  }
  return out;
}
}  // namespace internal

// Reads the records between `cons_untrusted` and `prod_untrusted` in `data` (one CPU's data area,
// exactly data_size bytes), at most `max_bytes` of them (whole records only; at least one record
// is always delivered when there is one, so progress is guaranteed). `on_run` receives each
// contiguous stretch of whole records as raw bytes, after `on_record` has seen its records;
// either may be a no-op; an `on_record` that takes a RecordRef gets each record in place instead
// of a decoded copy. The caller should read prod once, issue a read barrier, call this on memory
// the producer will not touch until cons is published, then publish `new_cons`.
//
// The records are read where they lie, and `on_run` gets the ring's bytes again: when another
// process may write the ring meanwhile, those bytes need not be the ones checked. A consumer that
// keeps or walks the bytes again uses DrainRingCopy.
template <typename OnRun, typename OnRecord>
RingDrain DrainRing(std::span<const std::byte> data, uint32_t cons_untrusted,
                    uint32_t prod_untrusted, uint32_t max_bytes, OnRun&& on_run,
                    OnRecord&& on_record) {
  auto in_place = [](std::span<const std::byte> stretch) { return stretch; };
  return internal::DrainRingVia(data, cons_untrusted, prod_untrusted, max_bytes, in_place, on_run,
                                on_record);
}

// DrainRing over a private copy: each stretch of the window (at most what the budget can take)
// is copied first to `copy_to(bytes)` (memory of the caller's, at least `bytes` long, that no one
// else writes), and the records are checked and walked there, so `on_record` and `on_run` see
// exactly the bytes checked whatever another writer of the shared ring does meanwhile. `on_run`
// gets the copy's whole records as std::span<std::byte>, the caller's to keep or rearrange.
// Shared memory is read once, by the copy.
template <typename CopyTo, typename OnRun, typename OnRecord>
RingDrain DrainRingCopy(std::span<const std::byte> data, uint32_t cons_untrusted,
                        uint32_t prod_untrusted, uint32_t max_bytes, CopyTo&& copy_to,
                        OnRun&& on_run, OnRecord&& on_record) {
  std::byte* copy = nullptr;
  auto stage = [&](std::span<const std::byte> stretch) {
    copy = copy_to(stretch.size());
    std::memcpy(copy, stretch.data(), stretch.size());
    return std::span<const std::byte>(copy, stretch.size());
  };
  // The walked bytes start at `copy`: hand them on writable.
  auto on_copied_run = [&](std::span<const std::byte> run) {
    on_run(std::span<std::byte>(copy, run.size()));
  };
  return internal::DrainRingVia(data, cons_untrusted, prod_untrusted, max_bytes, stage,
                                on_copied_run, on_record);
}

}  // namespace tracefmt
