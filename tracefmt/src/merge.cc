#include "tracefmt/merge.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace tracefmt {

namespace {
// Chunks read at start to find the CPUs; xentrace writes every CPU's chunk each poll, so this
// sees them all long before the limit. A CPU first met later still joins the merge.
constexpr size_t kDiscoveryChunks = 4096;
// How often (in chunk bytes scanned) the pages behind every CPU's head are handed back: together
// with TraceFileReader's release step, this bounds the mapped pages held whatever the file size.
constexpr uint64_t kReleaseEveryBytes = 1u << 20;
}  // namespace

MergedTraceReader::MergedTraceReader(TraceFileReader& file) : file_(file) {}

void MergedTraceReader::NoteError(const Error& e) {
  if (!error_ || e.offset < error_->offset) error_ = e;
}

void MergedTraceReader::AddCursor(uint32_t cpu, uint64_t chunk_offset) {
  auto it = std::lower_bound(cursors_.begin(), cursors_.end(), cpu,
                             [](const Cursor& c, uint32_t id) { return c.cpu < id; });
  if (it != cursors_.end() && it->cpu == cpu) return;
  Cursor c;
  c.cpu = cpu;
  c.scan = chunk_offset;
  cursors_.insert(it, c);  // indices moved: Prepare sorts order_ again
}

void MergedTraceReader::Discover() {
  discovered_ = true;
  if (file_.size() == 0) NoteError(EmptyFileError());
  uint64_t offset = 0;
  // Discovery reads a header every few dozen KiB over up to hundreds of MiB: with PeekChunk, not
  // through the mapping, so no page is mapped now only to be unmapped and mapped again when the
  // merge gets there.
  for (size_t n = 0; n < kDiscoveryChunks && offset < file_.size(); ++n) {
    Chunk chunk;
    bool usable = false;
    const std::optional<Error> damage = file_.PeekChunk(offset, chunk, usable);
    // Damage is reported when a cursor reaches it; a window cut short still has a CPU.
    if (!usable) {
      NoteError(*damage);  // no cursor may ever scan this far (noise from byte 0)
      break;
    }
    AddCursor(chunk.cpu, offset);
    if (damage) break;
    offset += kChunkHeaderBytes + chunk.bytes.size();
  }
  for (Cursor& c : cursors_) Load(c);
}

void MergedTraceReader::Prepare() {
  if (!discovered_) Discover();
  while (!newcomers_.empty()) {
    auto [cpu, offset] = newcomers_.back();
    newcomers_.pop_back();
    AddCursor(cpu, offset);
    for (Cursor& c : cursors_) {
      if (c.cpu == cpu) Load(c);
    }
  }
  order_.clear();
  for (Cursor& c : cursors_) {
    if (c.has_head) order_.push_back(&c);
  }
  std::sort(order_.begin(), order_.end(), Before);
  ComputeLimit();
}

bool MergedTraceReader::NextChunkFor(Cursor& c) {
  const auto file = file_.bytes();
  while (c.scan < file.size()) {
    Chunk chunk;
    Result<Chunk> parsed = ParseChunk(file, c.scan);
    if (parsed) {
      chunk = *parsed;
    } else {
      NoteError(parsed.error());
      // A window cut short by the end of the file still holds records worth delivering.
      const bool cut_short =
          parsed.error().code == ErrorCode::kTruncated && file.size() - c.scan >= kChunkHeaderBytes;
      if (!cut_short) {
        c.scan = file.size();
        return false;
      }
      chunk.cpu = Load32(file.data() + c.scan + 4);
      chunk.file_offset = c.scan;
      chunk.bytes = file.subspan(c.scan + kChunkHeaderBytes);
    }
    c.scan = chunk.data_offset() + chunk.bytes.size();
    if (chunk.cpu == c.cpu) {
      c.data = chunk.bytes.data();
      c.size = chunk.bytes.size();
      c.chunk_data_offset = chunk.data_offset();
      c.pos = 0;
      bytes_since_release_ += c.size;
      if (bytes_since_release_ >= kReleaseEveryBytes) ReleaseConsumed();
      return true;
    }
    const bool known = std::any_of(cursors_.begin(), cursors_.end(),
                                   [&](const Cursor& o) { return o.cpu == chunk.cpu; });
    const bool queued = std::any_of(newcomers_.begin(), newcomers_.end(),
                                    [&](const auto& n) { return n.first == chunk.cpu; });
    if (!known && !queued) newcomers_.emplace_back(chunk.cpu, chunk.file_offset);
  }
  return false;
}

void MergedTraceReader::Load(Cursor& c) {
  for (;;) {
    if (c.pos < c.size) {
      if (PeekFast(c, c.head_tsc)) {
        c.has_head = true;
        return;
      }
      Chunk chunk;
      chunk.cpu = c.cpu;
      chunk.file_offset = c.chunk_data_offset - kChunkHeaderBytes;
      chunk.bytes = {c.data, c.size};
      NoteError(RecordCutShortError(chunk, c.pos));
      c.pos = c.size;
      continue;
    }
    if (!NextChunkFor(c)) {
      c.has_head = false;
      return;
    }
  }
}

void MergedTraceReader::ReleaseConsumed() {
  bytes_since_release_ = 0;
  uint64_t lowest = file_.size();
  for (const Cursor& c : cursors_) {
    if (c.has_head) lowest = std::min(lowest, c.chunk_data_offset + c.pos);
  }
  file_.Release(lowest);
}

bool MergedTraceReader::Next(MergedRecord& out) {
  if (NeedsPrepare()) Prepare();
  if (order_.empty()) return false;
  Cursor& c = *order_.front();
  out.cpu = c.cpu;
  out.tsc = c.head_tsc;
  out.file_offset = c.chunk_data_offset + c.pos;
  RecordRef{c.head_header, c.data + c.pos}.DecodeTo(out.rec);
  Advance(c);
  if (!c.has_head || c.head_tsc >= limit_) Reorder();
  return true;
}

std::vector<uint32_t> MergedTraceReader::cpus() const {
  std::vector<uint32_t> ids;
  for (const Cursor& c : cursors_) ids.push_back(c.cpu);
  return ids;
}

LiveMerger::Queue& LiveMerger::QueueFor(uint32_t cpu) {
  if (cpu >= queues_.size()) {
    const size_t old = queues_.size();
    queues_.resize(cpu + 1);
    for (size_t i = old; i < queues_.size(); ++i) queues_[i].cpu = static_cast<uint32_t>(i);
  }
  return queues_[cpu];
}

std::byte* LiveMerger::Room(Queue& q, size_t more) {
  if (q.head > 0 && q.size + more > q.capacity) {  // reuse the emitted space
    std::memmove(q.bytes.get(), q.bytes.get() + q.head, q.size - q.head);
    q.size -= q.head;
    q.head = 0;
  }
  if (q.size + more > q.capacity) {
    const size_t capacity = std::max({q.capacity * 2, q.size + more, size_t{4096}});
    auto grown = std::make_unique_for_overwrite<std::byte[]>(capacity);
    if (q.size > 0) std::memcpy(grown.get(), q.bytes.get(), q.size);
    q.bytes = std::move(grown);
    q.capacity = capacity;
  }
  return q.bytes.get() + q.size;
}

std::byte* LiveMerger::StageRecords(uint32_t cpu, size_t bytes) {
  return Room(QueueFor(cpu), bytes);
}

void LiveMerger::CommitStaged(uint32_t cpu, size_t bytes, size_t count, uint64_t last_tsc) {
  if (bytes == 0) return;
  Queue& q = QueueFor(cpu);
  const std::byte* first = q.bytes.get() + q.size;
  // A head without a TSC of its own merges at the CPU's last one, which head_tsc holds.
  if (q.empty() && HeaderHasTsc(Load32(first))) q.head_tsc = Load64(first + 4);
  q.size += std::min(bytes, q.capacity - q.size);
  if (last_tsc != 0) q.last_tsc = last_tsc;
  pending_ += count;
}

void LiveMerger::PushRecords(uint32_t cpu, std::span<const std::byte> records, size_t count,
                             uint64_t last_tsc) {
  if (records.empty()) return;
  std::memcpy(StageRecords(cpu, records.size()), records.data(), records.size());
  CommitStaged(cpu, records.size(), count, last_tsc);
}

void LiveMerger::Push(uint32_t cpu, const Record& rec) {
  std::array<std::byte, kMaxRecordBytes> bytes;
  const size_t size = EncodeRecord(rec, bytes);
  if (size == 0) return;  // more than kMaxExtraWords: no ring record looks like that
  PushRecords(cpu, std::span<const std::byte>(bytes.data(), size), 1, rec.has_tsc ? rec.tsc : 0);
}

void LiveMerger::OrderHeads(uint64_t watermark) {
  order_.clear();
  for (Queue& q : queues_) {
    if (!q.empty() && q.head_tsc <= watermark) order_.push_back(&q);
  }
  std::sort(order_.begin(), order_.end(), Before);
}

void LiveMerger::ReorderFront(uint64_t watermark) {
  Queue* const front = order_[0];
  if (front->empty() || front->head_tsc > watermark) {
    order_.erase(order_.begin());
    return;
  }
  Queue** o = order_.data();
  const size_t count = order_.size();
  size_t k = 0;
  for (; k + 1 < count && Before(o[k + 1], front); ++k) o[k] = o[k + 1];
  o[k] = front;
}

void LiveMerger::ClearEmptied() {
  for (Queue& q : queues_) {
    if (q.empty() && q.head > 0) {
      q.size = 0;
      q.head = 0;
    }
  }
}

size_t LiveMerger::buffer_bytes() const {
  size_t bytes = queues_.capacity() * sizeof(Queue) + order_.capacity() * sizeof(Queue*);
  for (const Queue& q : queues_) bytes += q.capacity;
  return bytes;
}

}  // namespace tracefmt
