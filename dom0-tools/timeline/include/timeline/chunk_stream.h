// timeline/chunk_stream.h — xentrace chunks read from a descriptor as they arrive.
//
// TraceFileReader maps a whole file; a pipe (xentrace ... | xenbake-timeline -) or a capture
// still being written cannot be mapped. ChunkStream reads the same format with read(2), one chunk
// at a time, holding at most one chunk. At the end of the data it says so and keeps its place, so
// a caller following a growing file calls Next again once more has been written.
//
//   ChunkStream stream(fd);
//   OwnedChunk chunk;
//   while (stream.Next(chunk) == ChunkStream::State::kChunk) handle(chunk.cpu, chunk.bytes);
//   if (stream.error()) report(stream.error()->Describe());
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "tracefmt/result.h"

namespace xenbake::timeline {

struct OwnedChunk {
  uint32_t cpu = 0;
  uint64_t file_offset = 0;      // offset of its CPU_CHANGE header in the stream
  std::vector<std::byte> bytes;  // the window's raw records
};

class ChunkStream {
 public:
  enum class State {
    kChunk,      // `out` holds the next chunk
    kEndOfData,  // nothing more for now (a partial chunk is kept for the next call)
    kError,      // corrupt framing or a read error: error() says what and where
  };

  // A window larger than this is treated as corrupt framing rather than allocated.
  static constexpr uint32_t kMaxWindowBytes = 256u << 20;

  explicit ChunkStream(int fd) : fd_(fd) {}

  State Next(OwnedChunk& out);
  const std::optional<tracefmt::Error>& error() const { return error_; }
  uint64_t offset() const { return offset_; }
  // Bytes of a chunk begun but not complete (a truncated stream, when the data has ended).
  size_t partial_bytes() const { return filled_; }

 private:
  // Reads until `buffer_` holds `want` bytes; false at the end of the data or on an error.
  bool Fill(size_t want);

  int fd_;
  std::vector<std::byte> buffer_;  // the chunk being assembled: header, then window
  size_t filled_ = 0;
  uint64_t offset_ = 0;  // stream offset of buffer_[0]
  std::optional<tracefmt::Error> error_;
};

}  // namespace xenbake::timeline
