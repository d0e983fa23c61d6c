#include "tracefmt/merge.h"

#include <fmt/format.h>

#include <algorithm>

namespace tracefmt {

namespace {
// Chunks read at start to find the CPUs; xentrace writes every CPU's chunk each poll, so this
// sees them all long before the limit. A CPU first met later still joins the merge.
constexpr size_t kDiscoveryChunks = 4096;
constexpr uint64_t kReleaseEveryChunks = 256;
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
  cursors_.insert(it, c);
  run_ = SIZE_MAX;  // indices moved
}

void MergedTraceReader::Discover() {
  discovered_ = true;
  const auto file = file_.bytes();
  if (file.empty()) NoteError(EmptyFileError());
  uint64_t offset = 0;
  for (size_t n = 0; n < kDiscoveryChunks && offset < file.size(); ++n) {
    Result<Chunk> chunk = ParseChunk(file, offset);
    // Damage is reported when a cursor reaches it; a window cut short still has a CPU.
    const bool cut_short = !chunk && chunk.error().code == ErrorCode::kTruncated &&
                           file.size() - offset >= kChunkHeaderBytes;
    if (!chunk && !cut_short) {
      NoteError(chunk.error());  // no cursor may ever scan this far (noise from byte 0)
      break;
    }
    const uint32_t cpu = chunk ? chunk->cpu : Load32(file.data() + offset + 4);
    AddCursor(cpu, offset);
    if (!chunk) break;
    offset += kChunkHeaderBytes + chunk->bytes.size();
  }
  for (Cursor& c : cursors_) Load(c);
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
      c.chunk = chunk.bytes;
      c.chunk_data_offset = chunk.data_offset();
      c.pos = 0;
      if (++chunks_since_release_ >= kReleaseEveryChunks) ReleaseConsumed();
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
    if (c.pos < c.chunk.size()) {
      const size_t used = DecodeRecord(c.chunk.subspan(c.pos), c.head.rec);
      if (used == 0) {
        Chunk chunk;
        chunk.cpu = c.cpu;
        chunk.file_offset = c.chunk_data_offset - kChunkHeaderBytes;
        chunk.bytes = c.chunk;
        NoteError(RecordCutShortError(chunk, c.pos));
        c.pos = c.chunk.size();
        continue;
      }
      c.head.cpu = c.cpu;
      c.head.file_offset = c.chunk_data_offset + c.pos;
      if (c.head.rec.has_tsc) c.last_tsc = c.head.rec.tsc;
      c.head.tsc = c.last_tsc;
      c.pos += used;
      c.has_head = true;
      return;
    }
    if (!NextChunkFor(c)) {
      c.has_head = false;
      return;
    }
  }
}

void MergedTraceReader::ReleaseConsumed() {
  chunks_since_release_ = 0;
  uint64_t lowest = file_.size();
  for (const Cursor& c : cursors_) {
    if (c.has_head) lowest = std::min(lowest, c.head.file_offset);
  }
  file_.Release(lowest);
}

bool MergedTraceReader::Next(MergedRecord& out) {
  if (!discovered_) Discover();
  while (!newcomers_.empty()) {
    auto [cpu, offset] = newcomers_.back();
    newcomers_.pop_back();
    AddCursor(cpu, offset);
    for (Cursor& c : cursors_) {
      if (c.cpu == cpu) Load(c);
    }
  }
  if (run_ < cursors_.size()) {
    Cursor& c = cursors_[run_];
    if (c.has_head && c.head.tsc < run_limit_) {
      out = c.head;
      Load(c);
      return true;
    }
  }
  // Pick the oldest head (the lower CPU on a tie) and note the oldest of the rest: the chosen
  // CPU may run on, without comparing again, while it stays below that.
  size_t best = SIZE_MAX;
  uint64_t others = ~uint64_t{0};
  for (size_t i = 0; i < cursors_.size(); ++i) {
    const Cursor& c = cursors_[i];
    if (!c.has_head) continue;
    if (best == SIZE_MAX || c.head.tsc < cursors_[best].head.tsc) {
      if (best != SIZE_MAX) others = std::min(others, cursors_[best].head.tsc);
      best = i;
    } else {
      others = std::min(others, c.head.tsc);
    }
  }
  if (best == SIZE_MAX) return false;
  run_ = best;
  run_limit_ = others;
  out = cursors_[best].head;
  Load(cursors_[best]);
  return true;
}

std::vector<uint32_t> MergedTraceReader::cpus() const {
  std::vector<uint32_t> ids;
  for (const Cursor& c : cursors_) ids.push_back(c.cpu);
  return ids;
}

void LiveMerger::Push(uint32_t cpu, const Record& rec) {
  if (cpu >= queues_.size()) queues_.resize(cpu + 1);
  Queue& q = queues_[cpu];
  if (rec.has_tsc) q.last_tsc = rec.tsc;
  MergedRecord m;
  m.cpu = cpu;
  m.tsc = q.last_tsc;
  m.rec = rec;
  q.records.push_back(m);
  ++pending_;
}

}  // namespace tracefmt
