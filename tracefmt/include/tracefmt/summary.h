// tracefmt/summary.h — the counts that describe a whole capture.
//
// What `xenbake-dump --summary` prints and what the tests compare with the figures published for
// the real captures: records by CPU, class and event, the loss the hypervisor reported, the TSC
// span of each CPU, and whatever was wrong with the file. Counting runs in file order (chunk by
// chunk) because no count depends on the order across CPUs, and that is the fastest pass.
//
//   auto reader = TraceFileReader::Open(path);
//   if (!reader) die(reader.error().Describe());
//   TraceSummary summary = SummarizeTrace(*reader);
//   fmt::print("{} records, {} reported lost\n", summary.records, summary.lost_records);
//   for (const Error& e : summary.anomalies) warn(e.Describe());
#pragma once

#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include "tracefmt/record.h"
#include "tracefmt/result.h"
#include "tracefmt/trace_file.h"

namespace tracefmt {

struct CpuSummary {
  uint64_t records = 0;  // ring records of this CPU (CPU_CHANGE framing excluded)
  uint64_t chunks = 0;   // CPU_CHANGE chunks naming this CPU
  bool has_tsc = false;  // whether any record carried a TSC (first_tsc/last_tsc are valid)
  uint64_t first_tsc = 0;
  uint64_t last_tsc = 0;
  uint64_t tsc_backwards = 0;  // records whose TSC is below the CPU's previous TSC
  uint64_t tsc_span() const { return has_tsc ? last_tsc - first_tsc : 0; }
};

struct TraceSummary {
  uint64_t file_bytes = 0;
  uint64_t records = 0;              // every record, CPU_CHANGE framing included
  uint64_t cpu_change_records = 0;   // chunk headers
  uint64_t wrap_records = 0;         // TRC_TRACE_WRAP_BUFFER padding
  uint64_t lost_records_events = 0;  // TRC_LOST_RECORDS records
  uint64_t lost_records = 0;         // sum of the counts those records report
  uint64_t runstate_changes = 0;
  uint64_t switch_infprev = 0;
  uint64_t switch_infnext = 0;
  std::map<uint32_t, CpuSummary> per_cpu;  // by CPU id
  // By class name ("GEN", "SCHED", ...; "unknown"), CPU_CHANGE included: sums to `records`.
  std::map<std::string_view, uint64_t> per_class;
  // By event id, runstate changes folded into ev::kRunstateChange; CPU_CHANGE included.
  std::map<uint32_t, uint64_t> per_event;
  // Damage met while reading, in file order: the reader stops at the first framing error, so
  // this holds at most one of those, plus records cut short inside a chunk.
  std::vector<Error> anomalies;
};

// Accumulates a summary from chunks and records fed in file order; SummarizeTrace drives it over
// a file, and a live capture can feed it as it drains.
class SummaryBuilder {
 public:
  void AddChunk(const Chunk& chunk);  // counts the chunk's CPU_CHANGE header
  void AddRecord(uint32_t cpu, const Record& rec);
  // The same for a record left in place (no decoding: the header, the TSC and, for LOST_RECORDS,
  // one word are read).
  void AddRecord(uint32_t cpu, RecordRef rec);
  void AddAnomaly(Error error);
  void SetFileBytes(uint64_t bytes) { summary_.file_bytes = bytes; }
  // The summary so far; the builder can go on accumulating after.
  TraceSummary Snapshot() const;

 private:
  // Records by event id: open addressing over a power-of-two table, a multiply and usually one
  // probe per record (a capture has tens to hundreds of distinct events).
  class EventCounts {
   public:
    EventCounts() : slots_(64) {}
    void Increment(uint32_t event) {
      const uint32_t key = event + 1;  // 0 marks a free slot; ids have 28 bits
      size_t i = Hash(key);
      for (;;) {
        Slot& s = slots_[i];
        if (s.key == key) [[likely]] {
          ++s.count;
          return;
        }
        if (s.key == 0) break;
        i = (i + 1) & (slots_.size() - 1);
      }
      Insert(key, 1);
    }
    template <typename Fn>
    void ForEach(Fn&& fn) const {
      for (const Slot& s : slots_)
        if (s.key != 0) fn(s.key - 1, s.count);
    }

   private:
    struct Slot {
      uint32_t key = 0;
      uint64_t count = 0;
    };
    size_t Hash(uint32_t key) const {
      return (static_cast<uint64_t>(key) * 0x9e3779b97f4a7c15ull >> 32) & (slots_.size() - 1);
    }
    void Insert(uint32_t key, uint64_t count);
    std::vector<Slot> slots_;
    size_t used_ = 0;
  };
  CpuSummary& Cpu(uint32_t cpu);
  void CountTsc(CpuSummary& c, uint64_t tsc);
  TraceSummary summary_;
  // Hot counters in flat tables; folded into the summary's ordered maps by Snapshot.
  EventCounts event_counts_;
  std::vector<CpuSummary> cpus_;  // indexed by CPU id
  std::vector<bool> cpu_seen_;
};

// Reads `reader` from its current position to the end (or the first damage) and counts.
TraceSummary SummarizeTrace(TraceFileReader& reader);

}  // namespace tracefmt
