// simulator/producer.h — the writer side of Xen's trace buffers, with xen/common/trace.c semantics.
//
// What a consumer can observe is modelled exactly (Xen 4.17, __trace_var and tb_control):
//   - extra data is rounded up to whole words, at most 7; a record is 4 bytes of header, 8 of TSC
//     when it has one, then the words;
//   - the event mask admits a record when (mask & event), the class bits and the subclass nibble
//     all intersect; the CPU mask must include the CPU; CPUs without a buffer trace nothing;
//   - a dry run sizes everything the record needs: a pending TRC_LOST_RECORDS (28 bytes: count,
//     dom | vcpu << 16 of whoever runs, TSC of the first loss), TRC_TRACE_WRAP_BUFFER padding where
//     a record would cross the end of the data area, the record. If that does not fit, the record
//     is dropped (newest lost), counted, and nothing is written or notified;
//   - a WRAP record fills exactly the bytes left before the end (with a TSC when 7 words would not
//     be enough); its extra words are whatever bytes were there;
//   - the consumer is notified (VIRQ_TBUF) only when a record takes a buffer from below half full
//     to at least half full;
//   - a bogus prod or cons (unaligned, or >= 2*data_size) turns tracing off, as Xen does;
//   - the size is set once (SetSize); Disable stops writing and forgets pending losses.
//
// The producer is not thread-safe: its owner serialises calls (SimulatedHost holds a lock). The
// consumer side touches only cons, through TraceMemory's atomics.
//
//   TraceProducer producer(memory, &listener);
//   producer.SetSize(/*pages=*/8);
//   producer.Enable();
//   producer.Trace(/*cpu=*/0, tracefmt::ev::kWake, tsc, {dom, vcpu});
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "simulator/trace_memory.h"
#include "tracefmt/record.h"
#include "tracefmt/result.h"

namespace simulator {

inline constexpr uint32_t kLostRecordBytes = 4 + 8 + 16;  // header, TSC, 4 words

// Told when a buffer crosses the high-water mark (Xen raises VIRQ_TBUF from a tasklet).
class HighWaterListener {
 public:
  virtual ~HighWaterListener() = default;
  virtual void OnHighWater(uint32_t cpu) = 0;
};

// Told about every byte the producer writes and every record it drops: the ground truth a
// consumer's output is checked against. Bytes are the record exactly as it is in the ring
// (a WRAP record's stale extra words included).
class ProducedRecordObserver {
 public:
  virtual ~ProducedRecordObserver() = default;
  virtual void OnWritten(uint32_t cpu, std::span<const std::byte> record) = 0;
  virtual void OnDropped(uint32_t cpu, const tracefmt::Record& record) = 0;
};

// Per-CPU counts, kept as truth. Always: dropped == dropped_reported + dropped_cleared +
// pending_lost.
struct CpuTraceStats {
  uint64_t records_written = 0;       // caller's records that went in (not WRAP/LOST)
  uint64_t bytes_written = 0;         // every byte, WRAP and LOST records included
  uint64_t dropped = 0;               // caller's records that did not fit
  uint64_t lost_records_written = 0;  // TRC_LOST_RECORDS records inserted
  uint64_t dropped_reported = 0;      // sum of their counts
  uint64_t dropped_cleared = 0;       // pending counts a Disable threw away (never reported)
  uint64_t pending_lost = 0;          // dropped, not yet reported
  uint64_t first_lost_tsc = 0;        // of the pending run (valid when pending_lost > 0)
  uint64_t wrap_records = 0;
  uint64_t notifications = 0;
  uint64_t filtered = 0;  // refused by the event or CPU mask while enabled
};

enum class TraceOutcome : uint8_t { kWritten, kDropped, kFiltered, kDisabled, kNoBuffer };

struct TbufInfo {
  uint32_t event_mask = 0;
  uint32_t t_info_first_page = 0;  // "buffer_mfn": 0 before buffers exist
  uint32_t t_info_bytes = 0;       // "size": the t_info area, not a CPU buffer
};

class TraceProducer {
 public:
  // Neither pointer is owned; either may be null.
  TraceProducer(TraceMemory& memory, HighWaterListener* listener,
                ProducedRecordObserver* observer = nullptr);

  // --- tb_control
  // --------------------------------------------------------------------------------- One shot:
  // fails once buffers exist (EBUSY/EINVAL in Xen). Like Xen, a successful allocation also turns
  // tracing on.
  tracefmt::Status SetSize(uint32_t pages);
  // Fails when no buffers exist.
  tracefmt::Status Enable();
  void Disable();
  void SetEventMask(uint32_t mask) { event_mask_ = mask; }
  // Bit n of `bitmap` byte n/8 = CPU n (xc_cpumap_t); CPUs beyond the bitmap are excluded.
  void SetCpuMask(std::span<const uint8_t> bitmap);
  TbufInfo GetInfo() const;
  bool enabled() const { return enabled_; }
  // True once a bogus prod/cons turned tracing off (until the next Enable).
  bool disabled_by_bogus_pointers() const { return bogus_; }
  uint32_t event_mask() const { return event_mask_; }

  // --- the running vCPU, named in LOST_RECORDS records
  // ----------------------------------------------
  void SetCurrent(uint32_t cpu, uint16_t domain, uint16_t vcpu);

  // --- __trace_var ------------------------------------------------------------------------------
  // `extra` is rounded up to words (zero-padded), at most 7 words are kept. `tsc` is the CPU's
  // clock now; it stamps the record and any WRAP/LOST record written with it.
  TraceOutcome TraceBytes(uint32_t cpu, uint32_t event, uint64_t tsc,
                          std::span<const std::byte> extra, bool with_tsc = true);
  TraceOutcome Trace(uint32_t cpu, uint32_t event, uint64_t tsc, std::span<const uint32_t> words,
                     bool with_tsc = true);
  TraceOutcome Trace(uint32_t cpu, uint32_t event, uint64_t tsc,
                     std::initializer_list<uint32_t> words, bool with_tsc = true) {
    return Trace(cpu, event, tsc, std::span<const uint32_t>(words.begin(), words.size()), with_tsc);
  }

  const CpuTraceStats& stats(uint32_t cpu) const { return cpus_.at(cpu).stats; }
  uint32_t nr_cpu_ids() const { return static_cast<uint32_t>(cpus_.size()); }
  TraceMemory& memory() { return memory_; }

 private:
  struct CpuState {
    CpuTraceStats stats;
    uint16_t current_domain = 0;
    uint16_t current_vcpu = 0;
  };
  struct Placement {  // the outcome of the dry run
    bool fits = false;
    bool started_below_highwater = false;
  };

  bool Admits(uint32_t cpu, uint32_t event) const;
  bool Bogus(uint32_t prod, uint32_t cons);
  uint32_t UnconsumedChecked(uint32_t cpu);
  uint32_t BytesToWrap(uint32_t prod) const;
  Placement DryRun(uint32_t cpu, uint32_t prod, uint32_t cons, uint32_t rec_size);
  uint32_t InsertWrap(uint32_t cpu, uint32_t prod, uint64_t tsc);
  uint32_t InsertLost(uint32_t cpu, uint32_t prod, uint64_t tsc);
  uint32_t InsertRecord(uint32_t cpu, uint32_t prod, const tracefmt::Record& rec);
  uint32_t Publish(uint32_t cpu, uint32_t prod, uint32_t size);
  void CountDrop(uint32_t cpu, const tracefmt::Record& rec, uint64_t tsc);

  TraceMemory& memory_;
  HighWaterListener* listener_;
  ProducedRecordObserver* observer_;
  std::vector<CpuState> cpus_;
  std::vector<bool> cpu_mask_;
  uint32_t event_mask_ = 0x0ffff000;  // TRC_ALL
  bool enabled_ = false;
  bool bogus_ = false;
};

}  // namespace simulator
