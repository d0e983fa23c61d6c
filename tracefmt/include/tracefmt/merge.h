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
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "tracefmt/record.h"
#include "tracefmt/result.h"
#include "tracefmt/trace_file.h"

namespace tracefmt {

// A run of one CPU's records offered to a consumer that can take several at once
// (MergedTraceReader::ForEachRun, LiveMerger::EmitRunsUpTo). `bytes` starts with the head: the
// next record in merged order, whole, merging at `tsc` (its own TSC, or its CPU's last one).
// What follows it on the same CPU, up to the end of `bytes`, is not yet checked: a consumer
// walking on checks every size. It may take records after the head while their TSC (their own,
// for those that have one) stays at or below `limit`.
//
// `lead` says how far this CPU leads the merge: a record of its run whose merged TSC (its own,
// or the last one before it) is below `lead` comes before every other CPU's remaining records,
// so it is the next record in merged order once all before it are taken. A consumer that can
// take only some records out of order (the accounting engine: hypercall counts, not scheduler
// records) takes those below the lead as they come, in order, without going back to the merge.
struct RunOffer {
  uint32_t cpu = 0;
  uint64_t tsc = 0;
  std::span<const std::byte> bytes;
  uint64_t limit = ~uint64_t{0};
  uint64_t lead = 0;
};

// What the consumer took: the head at least. `last_tsc` is the TSC of the last record taken that
// has one (the offer's `tsc` when none has), which a next record without a TSC merges at.
struct RunTaken {
  size_t bytes = 0;
  size_t records = 0;
  uint64_t last_tsc = 0;
};

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

  // The next record, decoded (a copy of up to 40 bytes of trace plus the merge's fields).
  bool Next(MergedRecord& out);

  // The zero-copy fast path: calls `fn(cpu, tsc, RecordRef)` for every remaining record, in the
  // same order as Next would deliver them, each left in place in the file (valid until the reader
  // moves on: copy what must outlive the call). `tsc` is the record's TSC or its CPU's last one.
  // Records are delivered in runs: a CPU whose next record precedes every other CPU's head goes
  // on without another comparison, each record costing one header load and one TSC compare.
  // Next and ForEach may be mixed.
  template <typename Fn>
  void ForEach(Fn&& fn);

  // The same records again, for a consumer that can take several of one CPU's records at once.
  // Whenever a CPU's head comes first, `sink.Take(const RunOffer&)` is offered that CPU's records
  // from the head to the end of its chunk, with no limit, and returns the RunTaken. Records taken
  // after the head are taken at the head's place in the merged order, before other CPUs' records
  // that may be older: for a consumer to whom they commute with those (the accounting engine's
  // counting of hypercalls between two scheduler records) the result is ForEach's, with one merge
  // step per run of records instead of one per record. The offer's `lead` is the merge's: the
  // records below it come before every other CPU's head.
  template <typename Sink>
  void ForEachRun(Sink& sink);

  // The first corrupt or truncated place met (file framing or a record cut short).
  const std::optional<Error>& error() const { return error_; }
  // CPUs seen so far, ascending.
  std::vector<uint32_t> cpus() const;

 private:
  // One CPU's stream. Its head is the record at `chunk[pos]`, complete within the chunk, with
  // `head_tsc` its TSC (or the CPU's last one) and `head_header` its header.
  struct Cursor {
    uint32_t cpu = 0;
    uint32_t head_header = 0;
    bool has_head = false;
    uint64_t head_tsc = 0;
    const std::byte* data = nullptr;  // the current chunk's records
    size_t size = 0;
    size_t pos = 0;
    uint64_t chunk_data_offset = 0;
    uint64_t scan = 0;  // file offset of the next chunk header to look at
  };
  // Makes the record at c.pos the head when it is complete in the chunk (the common case);
  // otherwise leaves the work to Load. `last_tsc` is the TSC of the record before it.
  static bool PeekFast(Cursor& c, uint64_t last_tsc) {
    if (c.size - c.pos < 4) return false;
    const uint32_t header = Load32(c.data + c.pos);
    if (c.size - c.pos < RecordBytesFromHeader(header)) return false;
    c.head_header = header;
    c.head_tsc = HeaderHasTsc(header) ? Load64(c.data + c.pos + 4) : last_tsc;
    return true;
  }
  // Steps the cursor past its head to the next record, crossing chunks when needed.
  void Advance(Cursor& c) {
    c.pos += RecordBytesFromHeader(c.head_header);
    if (!PeekFast(c, c.head_tsc)) [[unlikely]]
      Load(c);
  }
  // Emits c's records from its head on while their TSC stays below `limit` and the chunk lasts;
  // true when the chunk ended (or its next record is cut short), for Load to go on.
  template <typename Fn>
  static bool Run(Cursor& c, uint64_t limit, Fn& fn);
  // A cursor's position while RunPair works on it: locals, so the loop keeps them in registers.
  struct Head {
    const std::byte* data;
    size_t size;
    size_t pos;
    uint32_t header;
    uint64_t tsc;
  };
  // Emits h's head and steps to the next record; false when the chunk ended or its next record
  // is cut short (Load goes on from h.pos, and reports the damage).
  template <typename Fn>
  static bool Step(Head& h, uint32_t cpu, Fn& fn);
  // Two CPUs merged until one's chunk ends, which it returns (its head for Load to find). The
  // two trade places every record or two: each keeps the lead in a loop of its own while its
  // head is not past the other's, so a change of CPU costs one compare and no bookkeeping.
  template <typename Fn>
  static Cursor& RunPair(Cursor& lo, Cursor& hi, Fn& fn);
  // Discovers CPUs at the start, adds CPUs first met while scanning, and sorts the heads again.
  void Prepare();
  bool NeedsPrepare() const { return !discovered_ || !newcomers_.empty(); }
  // Whether cursor a's head comes before cursor b's: older TSC, or the lower CPU on a tie.
  static bool Before(const Cursor* a, const Cursor* b) {
    return a->head_tsc < b->head_tsc || (a->head_tsc == b->head_tsc && a->cpu < b->cpu);
  }
  // The TSC the front cursor's records must stay below to come before every other head:
  // strictly older than a lower CPU's head, no newer than a higher CPU's (ties go to the lower
  // CPU). A head at the largest TSC gives a limit one too low: the run stops early and the order,
  // not the limit, decides.
  void ComputeLimit() {
    if (order_.size() < 2) [[unlikely]] {
      limit_ = ~uint64_t{0};
      return;
    }
    const Cursor* next = order_[1];
    const uint64_t tsc = next->head_tsc;
    limit_ = tsc + (order_[0]->cpu < next->cpu && tsc != ~uint64_t{0} ? 1 : 0);
  }
  // Puts the front cursor back in order after its head moved on (or its stream ended).
  void Reorder() {
    Cursor* const front = order_[0];
    if (!front->has_head) [[unlikely]] {
      order_.erase(order_.begin());
    } else {
      Cursor** o = order_.data();
      const size_t n = order_.size();
      size_t k = 0;
      for (; k + 1 < n && Before(o[k + 1], front); ++k) o[k] = o[k + 1];
      o[k] = front;
    }
    ComputeLimit();
  }
  void Load(Cursor& c);  // the head from c.pos on, across chunks and damage
  bool NextChunkFor(Cursor& c);
  void Discover();
  void AddCursor(uint32_t cpu, uint64_t chunk_offset);
  void NoteError(const Error& e);
  void ReleaseConsumed();

  TraceFileReader& file_;
  std::vector<Cursor> cursors_;  // sorted by CPU id, so ties go to the lower CPU
  // The cursors with a head, oldest head first (Before). Interleaved CPUs switch
  // every record or two, so the order is kept up to date, not searched for: when the front
  // cursor's run ends, it moves back past the heads now older than its own (one compare with
  // two CPUs).
  std::vector<Cursor*> order_;  // into cursors_; rebuilt by Prepare when cursors_ changes
  uint64_t limit_ = 0;          // the front cursor runs on while its head TSC is below this
  std::vector<std::pair<uint32_t, uint64_t>> newcomers_;  // CPUs first met while scanning
  std::optional<Error> error_;
  bool discovered_ = false;
  uint64_t bytes_since_release_ = 0;
};

template <typename Fn>
bool MergedTraceReader::Run(Cursor& c, uint64_t limit, Fn& fn) {
  // Locals instead of the cursor's fields, so the loop keeps them in registers.
  const uint32_t cpu = c.cpu;
  const std::byte* const data = c.data;
  const size_t size = c.size;
  size_t pos = c.pos;
  uint32_t header = c.head_header;
  uint64_t tsc = c.head_tsc;
  bool chunk_ended = false;
  for (;;) {
    fn(cpu, tsc, RecordRef{header, data + pos});
    pos += RecordBytesFromHeader(header);
    if (size - pos < 4) [[unlikely]] {
      chunk_ended = true;
      break;
    }
    header = Load32(data + pos);
    if (size - pos < RecordBytesFromHeader(header)) [[unlikely]] {
      chunk_ended = true;  // cut short: Load reports it
      break;
    }
    if (HeaderHasTsc(header)) tsc = Load64(data + pos + 4);
    if (tsc >= limit) break;  // another CPU's head comes first: this record is the new head
  }
  c.pos = pos;
  c.head_header = header;
  c.head_tsc = tsc;  // when the chunk ended: the CPU's last TSC, for a record without one
  return chunk_ended;
}

template <typename Fn>
[[gnu::always_inline]] inline bool MergedTraceReader::Step(Head& h, uint32_t cpu, Fn& fn) {
  fn(cpu, h.tsc, RecordRef{h.header, h.data + h.pos});
  h.pos += RecordBytesFromHeader(h.header);
  if (h.size - h.pos < kMinRecordBytes) [[unlikely]]
    return false;
  const uint32_t header = Load32(h.data + h.pos);
  if (h.size - h.pos < RecordBytesFromHeader(header)) [[unlikely]]
    return false;
  h.header = header;
  if (HeaderHasTsc(header)) h.tsc = Load64(h.data + h.pos + 4);
  return true;
}

template <typename Fn>
MergedTraceReader::Cursor& MergedTraceReader::RunPair(Cursor& lo, Cursor& hi, Fn& fn) {
  Head l{lo.data, lo.size, lo.pos, lo.head_header, lo.head_tsc};
  Head h{hi.data, hi.size, hi.pos, hi.head_header, hi.head_tsc};
  const uint32_t lo_cpu = lo.cpu;
  const uint32_t hi_cpu = hi.cpu;
  bool lo_ended = false;
  for (;;) {
    // Ties go to the lower CPU: it leads while its head is not newer than the other's.
    while (l.tsc <= h.tsc) {
      if (!Step(l, lo_cpu, fn)) [[unlikely]] {
        lo_ended = true;
        goto done;
      }
    }
    while (h.tsc < l.tsc) {
      if (!Step(h, hi_cpu, fn)) [[unlikely]]
        goto done;
    }
  }
done:
  lo.pos = l.pos;
  lo.head_header = l.header;
  lo.head_tsc = l.tsc;  // when the chunk ended: the CPU's last TSC, for a record without one
  hi.pos = h.pos;
  hi.head_header = h.header;
  hi.head_tsc = h.tsc;
  return lo_ended ? lo : hi;
}

template <typename Fn>
void MergedTraceReader::ForEach(Fn&& fn) {
  for (;;) {
    if (NeedsPrepare()) [[unlikely]]
      Prepare();
    if (order_.size() == 2) [[likely]] {
      // Two CPUs (the common capture), whose records interleave every one or two: merged in
      // RunPair until a chunk ends, without touching order_.
      Cursor* lo = order_[0]->cpu < order_[1]->cpu ? order_[0] : order_[1];
      Cursor* hi = lo == order_[0] ? order_[1] : order_[0];
      Cursor* ended = nullptr;
      do {
        ended = &RunPair(*lo, *hi, fn);
        Load(*ended);
      } while (ended->has_head && !NeedsPrepare());
      // Reorder moves the front cursor back into place, or drops it when its stream ended.
      order_[0] = ended;
      order_[1] = ended == lo ? hi : lo;
    } else {
      if (order_.empty()) return;
      Cursor& c = *order_.front();
      if (Run(c, limit_, fn)) Load(c);
    }
    Reorder();
  }
}

template <typename Sink>
void MergedTraceReader::ForEachRun(Sink& sink) {
  for (;;) {
    if (NeedsPrepare()) [[unlikely]]
      Prepare();
    if (order_.empty()) return;
    Cursor& c = *order_.front();
    const RunTaken taken = sink.Take(
        RunOffer{c.cpu, c.head_tsc, std::span<const std::byte>(c.data + c.pos, c.size - c.pos),
                 ~uint64_t{0}, limit_});
    c.pos += taken.bytes;
    c.head_tsc = taken.last_tsc;  // the CPU's last TSC, for a next record without one
    if (!PeekFast(c, taken.last_tsc)) [[unlikely]]
      Load(c);
    if (!c.has_head || c.head_tsc >= limit_) Reorder();
  }
}

// A record released by LiveMerger::EmitBatchesUpTo, left where it lies in the merger's per-CPU
// buffer: valid until the merger is next pushed to or emits again. 24 bytes, so a batch of a few
// hundred stays in the first-level cache.
struct MergedRef {
  const std::byte* p = nullptr;  // the record's first byte (its header)
  uint64_t tsc = 0;              // the record's TSC, or its CPU's last TSC when it has none
  uint32_t header = 0;
  uint32_t cpu = 0;
  RecordRef rec() const { return RecordRef{header, p}; }
};

// Live merge with a watermark. Records pushed per CPU (in that CPU's order) are held until
// EmitUpTo(watermark) releases, in TSC order, every record with tsc <= watermark.
//
// The daemon's path copies each CPU's ring window into that CPU's byte buffer as it lies
// (PushRecords: one copy per window, no decoding) and takes the merged records back as runs
// offered where they lie (EmitRunsUpTo: one call per run, not per record). EmitBatchesUpTo hands
// out batches of MergedRef into those buffers; Push and EmitUpTo, one decoded record at a time,
// are the simple path for tools and tests.
class LiveMerger {
 public:
  static constexpr size_t kBatchRecords = 256;

  // Appends `count` whole records for `cpu`, exactly as the ring holds them; `last_tsc` is the
  // TSC of the newest of them that has one (0 when none has). The caller has walked the records
  // (the ring drain checks every size against the window), so `records` ends on a record boundary.
  void PushRecords(uint32_t cpu, std::span<const std::byte> records, size_t count,
                   uint64_t last_tsc);
  // The same in two steps, so a ring window is copied once, straight into the CPU's buffer, and
  // checked there rather than in shared memory (tracefmt::DrainRingCopy's copy_to): room for
  // `bytes` more bytes after `cpu`'s records, valid until the next call on the merger...
  std::byte* StageRecords(uint32_t cpu, size_t bytes);
  // ...then the first `bytes` of that room (at most what was staged) held as `count` whole
  // records, newest TSC `last_tsc` (0: none has one), as PushRecords holds them.
  void CommitStaged(uint32_t cpu, size_t bytes, size_t count, uint64_t last_tsc);
  // One decoded record (encoded again into the CPU's buffer).
  void Push(uint32_t cpu, const Record& rec);
  // Releases every held record with tsc <= watermark, in TSC order (ties to the lower CPU), to
  // `sink(std::span<const MergedRef>)`, at most kBatchRecords at a time. Returns how many.
  template <typename BatchSink>
  uint64_t EmitBatchesUpTo(uint64_t watermark, BatchSink&& sink);
  // The same records, in runs: whenever a CPU's head comes first, `sink.Take(const RunOffer&)`
  // is offered that CPU's held records from the head on, limited to the watermark, and returns
  // the RunTaken (see MergedTraceReader::ForEachRun for when runs give the merged order's result).
  // Returns how many records were taken.
  template <typename RunSink>
  uint64_t EmitRunsUpTo(uint64_t watermark, RunSink&& sink);
  // The same, one decoded record at a time: `sink(const MergedRecord&)`.
  template <typename Sink>
  uint64_t EmitUpTo(uint64_t watermark, Sink&& sink) {
    MergedRecord m;
    return EmitBatchesUpTo(watermark, [&](std::span<const MergedRef> batch) {
      for (const MergedRef& r : batch) {
        m.cpu = r.cpu;
        m.tsc = r.tsc;
        r.rec().DecodeTo(m.rec);
        sink(static_cast<const MergedRecord&>(m));
      }
    });
  }
  // Releases everything held, in TSC order (shutdown, final flush).
  template <typename Sink>
  uint64_t EmitAll(Sink&& sink) {
    return EmitUpTo(~uint64_t{0}, sink);
  }
  size_t pending() const { return pending_; }
  // TSC of the newest record pushed for `cpu`, 0 when none.
  uint64_t last_tsc(uint32_t cpu) const { return cpu < queues_.size() ? queues_[cpu].last_tsc : 0; }
  // Bytes held in the per-CPU buffers (their capacity: what stays allocated), for memory reports.
  size_t buffer_bytes() const;

 private:
  // One CPU's held records, whole and as the ring holds them, read from `head` on. Emptied
  // (keeping its allocation) when everything was emitted and compacted when it would grow, so a
  // steady state allocates nothing. Raw storage rather than a vector: growing a vector of bytes
  // zeroes them first, only for the copy to overwrite them.
  struct Queue {
    std::unique_ptr<std::byte[]> bytes;
    size_t size = 0;
    size_t capacity = 0;
    size_t head = 0;
    // The TSC the record at `head` merges at; when the queue is empty, the TSC of the last record
    // emitted, which a next record without a TSC of its own takes.
    uint64_t head_tsc = 0;
    uint64_t last_tsc = 0;
    uint32_t cpu = 0;
    bool empty() const { return head == size; }
  };
  // Whether a's head is released before b's: older TSC, or the lower CPU on a tie.
  static bool Before(const Queue* a, const Queue* b) {
    return a->head_tsc < b->head_tsc || (a->head_tsc == b->head_tsc && a->cpu < b->cpu);
  }
  // The newest TSC order_[0]'s records may have and still come before every other head: older
  // than the second head, or as old when the front's CPU is the lower (ties go to it).
  uint64_t FrontReach() const {
    if (order_.size() < 2) return ~uint64_t{0};
    const Queue* front = order_[0];
    const Queue* second = order_[1];
    // No underflow: the front comes first, so a second head at TSC 0 has the higher CPU.
    return front->cpu < second->cpu ? second->head_tsc : second->head_tsc - 1;
  }
  Queue& QueueFor(uint32_t cpu);
  // Makes room for `more` bytes after the records, moving the unemitted records to the front
  // when that avoids growing; returns where they go (the queue's size is unchanged).
  std::byte* Room(Queue& q, size_t more);
  // Gathers the queues with a record at or below `watermark`, oldest head first, into order_.
  void OrderHeads(uint64_t watermark);
  // Puts order_[0] back in order after its head moved on, or drops it when it has nothing more
  // at or below `watermark`.
  void ReorderFront(uint64_t watermark);
  // Appends q's records from its head on to the batch while their TSC stays at or below `limit`
  // (the first one unconditionally), handing full batches to the sink; returns how many.
  template <typename BatchSink>
  size_t Run(Queue& q, uint64_t limit, size_t& n, BatchSink& sink);
  void ClearEmptied();

  std::vector<Queue> queues_;
  // During an emission: the queues with a record to release, oldest head first. CPUs interleave
  // every record or two, so the order is kept up to date rather than searched for: when the
  // front queue's run ends, it moves back past the heads now older than its own.
  std::vector<Queue*> order_;
  size_t pending_ = 0;
  std::array<MergedRef, kBatchRecords> batch_{};
};

template <typename BatchSink>
size_t LiveMerger::Run(Queue& q, uint64_t limit, size_t& n, BatchSink& sink) {
  // Locals instead of the queue's fields, so the loop keeps them in registers.
  const std::byte* const data = q.bytes.get();
  const size_t size = q.size;
  const uint32_t cpu = q.cpu;
  size_t pos = q.head;
  uint64_t tsc = q.head_tsc;
  uint32_t header = Load32(data + pos);
  size_t records = 0;
  for (;;) {
    batch_[n++] = MergedRef{data + pos, tsc, header, cpu};
    ++records;
    if (n == kBatchRecords) [[unlikely]] {
      sink(std::span<const MergedRef>(batch_.data(), n));
      n = 0;
    }
    pos += RecordBytesFromHeader(header);
    if (pos == size) break;
    header = Load32(data + pos);
    if (HeaderHasTsc(header)) tsc = Load64(data + pos + 4);
    if (tsc > limit) break;
  }
  q.head = pos;
  q.head_tsc = tsc;
  return records;
}

template <typename BatchSink>
uint64_t LiveMerger::EmitBatchesUpTo(uint64_t watermark, BatchSink&& sink) {
  OrderHeads(watermark);
  size_t n = 0;  // records in batch_
  uint64_t emitted = 0;
  while (!order_.empty()) {
    // The front queue's records go while they come before every other head.
    emitted += Run(*order_[0], std::min(watermark, FrontReach()), n, sink);
    ReorderFront(watermark);
  }
  if (n > 0) sink(std::span<const MergedRef>(batch_.data(), n));
  pending_ -= emitted;
  ClearEmptied();
  return emitted;
}

template <typename RunSink>
uint64_t LiveMerger::EmitRunsUpTo(uint64_t watermark, RunSink&& sink) {
  OrderHeads(watermark);
  uint64_t emitted = 0;
  while (!order_.empty()) {
    Queue& q = *order_[0];
    // The lead is past the reach (a reach at the largest TSC gives a lead one too low: the run
    // stops early and the order decides).
    const uint64_t reach = FrontReach();
    const uint64_t lead = reach + (reach != ~uint64_t{0} ? 1 : 0);
    const RunTaken taken = sink.Take(RunOffer{
        q.cpu, q.head_tsc, std::span<const std::byte>(q.bytes.get() + q.head, q.size - q.head),
        watermark, lead});
    q.head += taken.bytes;
    q.head_tsc = taken.last_tsc;  // the CPU's last TSC, for a next record without one
    if (!q.empty()) {
      const uint32_t header = Load32(q.bytes.get() + q.head);
      if (HeaderHasTsc(header)) q.head_tsc = Load64(q.bytes.get() + q.head + 4);
    }
    emitted += taken.records;
    ReorderFront(watermark);
  }
  pending_ -= emitted;
  ClearEmptied();
  return emitted;
}

}  // namespace tracefmt
