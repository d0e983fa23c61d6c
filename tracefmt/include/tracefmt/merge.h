// tracefmt/merge.h — one time-ordered stream from the per-CPU streams.
//
// Each CPU's records are in TSC order on their own; a consumer that follows a vCPU across
// physical CPUs needs them merged. Records without a TSC take their CPU's last TSC, so they stay
// right after the record they followed. Ties go to the lower CPU id, so the output is
// deterministic (fit for golden files).
//
// From a file:
//
//   MergedTraceReader merged(reader);
//   MergedRecord m;
//   while (merged.Next(m)) engine.Add(m.cpu, m.rec);
//   if (merged.error()) report(*merged.error());
//
// Live (the daemon): push what each CPU's drain delivered, then emit everything up to a
// watermark — the oldest time that every CPU is known to have passed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "tracefmt/record.h"
#include "tracefmt/result.h"
#include "tracefmt/trace_file.h"

namespace tracefmt {

struct MergedRecord {
  uint32_t cpu = 0;
  uint64_t tsc = 0;          // the record's TSC, or its CPU's last TSC when it has none
  uint64_t file_offset = 0;  // where the record starts in the file (MergedTraceReader only)
  Record rec;
};

class MergedTraceReader {
 public:
  // `file` must outlive this reader. CPU_CHANGE framing is consumed here; what comes out are the
  // ring records.
  explicit MergedTraceReader(TraceFileReader& file);

  bool Next(MergedRecord& out);
  // The first corrupt or truncated place met (file framing or a record cut short).
  const std::optional<Error>& error() const { return error_; }
  // CPUs seen so far, ascending.
  std::vector<uint32_t> cpus() const;

 private:
  struct Cursor {
    uint32_t cpu = 0;
    uint64_t scan = 0;                 // file offset of the next chunk header to look at
    std::span<const std::byte> chunk;  // the current chunk's records
    uint64_t chunk_data_offset = 0;
    size_t pos = 0;  // next record within `chunk`
    uint64_t last_tsc = 0;
    bool has_head = false;  // `head` holds this CPU's next record
    MergedRecord head;
  };
  void Load(Cursor& c);  // fills c.head with the CPU's next record, if any
  bool NextChunkFor(Cursor& c);
  void Discover();
  void AddCursor(uint32_t cpu, uint64_t chunk_offset);
  void NoteError(const Error& e);
  void ReleaseConsumed();

  TraceFileReader& file_;
  std::vector<Cursor> cursors_;  // sorted by CPU id, so ties go to the lower CPU
  std::vector<std::pair<uint32_t, uint64_t>> newcomers_;  // CPUs first met while scanning
  std::optional<Error> error_;
  bool discovered_ = false;
  size_t run_ = SIZE_MAX;  // cursor being emitted while it stays below run_limit_
  uint64_t run_limit_ = 0;
  uint64_t chunks_since_release_ = 0;
};

// Live merge with a watermark. Records pushed per CPU (in that CPU's order) are held until
// EmitUpTo(watermark) releases, in TSC order, every record with tsc <= watermark.
class LiveMerger {
 public:
  void Push(uint32_t cpu, const Record& rec);
  template <typename Sink>
  uint64_t EmitUpTo(uint64_t watermark, Sink&& sink);
  // Releases everything held, in TSC order (shutdown, final flush).
  template <typename Sink>
  uint64_t EmitAll(Sink&& sink) {
    return EmitUpTo(~uint64_t{0}, sink);
  }
  size_t pending() const { return pending_; }
  // TSC of the newest record pushed for `cpu`, 0 when none.
  uint64_t last_tsc(uint32_t cpu) const { return cpu < queues_.size() ? queues_[cpu].last_tsc : 0; }

 private:
  struct Queue {
    std::deque<MergedRecord> records;
    uint64_t last_tsc = 0;
  };
  std::vector<Queue> queues_;
  size_t pending_ = 0;
};

template <typename Sink>
uint64_t LiveMerger::EmitUpTo(uint64_t watermark, Sink&& sink) {
  uint64_t emitted = 0;
  for (;;) {
    // The queue with the oldest head, and the oldest head among the others: the chosen queue
    // may run on without another comparison until it passes that.
    Queue* best = nullptr;
    uint64_t others = ~uint64_t{0};
    for (Queue& q : queues_) {
      if (q.records.empty() || q.records.front().tsc > watermark) continue;
      if (best == nullptr || q.records.front().tsc < best->records.front().tsc) {
        if (best != nullptr) others = std::min(others, best->records.front().tsc);
        best = &q;
      } else {
        others = std::min(others, q.records.front().tsc);
      }
    }
    if (best == nullptr) break;
    // Equal TSCs end the run so that the selection above breaks the tie by CPU id.
    do {
      sink(static_cast<const MergedRecord&>(best->records.front()));
      best->records.pop_front();
      --pending_;
      ++emitted;
    } while (!best->records.empty() && best->records.front().tsc < others &&
             best->records.front().tsc <= watermark);
  }
  return emitted;
}

}  // namespace tracefmt
