// tracefmt/trace_file.h — the xentrace file format, read and written.
//
// A xentrace file is a sequence of chunks, each a copy of a window of one CPU's ring:
//
//   u32 0x2001f003 (TRC_TRACE_CPU_CHANGE, 2 extra words, no TSC)
//   u32 cpu
//   u32 window_bytes
//   window_bytes of raw records, exactly as they were in the ring
//
// A window that wrapped in the ring is still one chunk (one header, the data in two writes). The
// file carries no CPU frequency: tools take --cpu-khz or read the sidecar (tracefmt/clock.h).
//
// TraceFileReader maps the file and hands out chunks as spans into the mapping; pages already
// read are released as it goes, so memory stays flat however large the file. A truncated or
// corrupt file gives an Error with the byte offset; every chunk and record before it is still
// delivered.
//
//   auto reader = TraceFileReader::Open(path);
//   if (!reader) die(reader.error().Describe());
//   Chunk chunk;
//   while (reader->Next(chunk)) {
//     RecordCursor cur(chunk.bytes);
//     Record rec;
//     while (cur.Next(rec)) handle(chunk.cpu, rec);
//     if (!cur.AtEnd()) report(chunk.file_offset + kChunkHeaderBytes + cur.offset());
//   }
//   if (reader->error()) report(*reader->error());
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracefmt/result.h"

namespace tracefmt {

inline constexpr uint32_t kChunkHeaderBytes = 12;

struct Chunk {
  uint32_t cpu = 0;
  uint64_t file_offset = 0;          // offset of the chunk's CPU_CHANGE header
  std::span<const std::byte> bytes;  // the window's raw records
  uint64_t data_offset() const { return file_offset + kChunkHeaderBytes; }
};

// Parses a chunk header at `offset` of `file`. Pure, for the reader and for tests.
Result<Chunk> ParseChunk(std::span<const std::byte> file, uint64_t offset);

// The error for a file of zero bytes: a capture that holds nothing is reported, not taken for
// a complete trace.
Error EmptyFileError();

// The error for a record that starts `pos` bytes into `chunk` but runs past its end.
Error RecordCutShortError(const Chunk& chunk, size_t pos);

// Opens `path` read-only (close-on-exec) when it is a regular file; anything else (a FIFO, a
// device, a directory) is refused with kInvalidArgument, without waiting: a FIFO opened for
// reading would block until some writer came, forever for a tool given the wrong path. Every
// file input of the tools comes through here (a trace, its sidecar). The caller closes the fd.
Result<int> OpenRegularFileForReading(const std::string& path);

// Reads `path` whole when it is a regular file (as above) of at most `max_bytes`, checked before
// and again while reading, since the file may grow: a larger one is kInvalidArgument, never read
// into memory; `what` names the kind of file in that error ("an accounting log"). For the small
// whole-file inputs (accounting logs, sidecars).
Result<std::vector<std::byte>> ReadRegularFile(const std::string& path, uint64_t max_bytes,
                                               std::string_view what);

class TraceFileReader {
 public:
  // Maps a file. Errors: the file cannot be opened or mapped.
  static Result<TraceFileReader> Open(const std::string& path);
  // Reads from bytes the caller keeps alive (tests, fuzzing).
  static TraceFileReader FromBytes(std::span<const std::byte> bytes);

  TraceFileReader(TraceFileReader&&) noexcept;
  TraceFileReader& operator=(TraceFileReader&&) noexcept;
  ~TraceFileReader();

  // The next chunk, or false at the end of the file or at the first corrupt or truncated chunk
  // (then error() says what and where). A chunk whose window runs past the end of the file is
  // delivered cut short, with error() set, so no record before the damage is lost. An empty file
  // is an error (EmptyFileError). Pages of chunks before the current one are released as it goes;
  // spans handed out earlier stay valid (the kernel reads them in again if touched).
  bool Next(Chunk& out);
  const std::optional<Error>& error() const { return error_; }

  // Tells the reader nothing before `offset` will be read again, so the pages can be released.
  void Release(uint64_t offset);
  // The chunk whose CPU_CHANGE header is at `offset`, the header read with pread rather than
  // through the mapping, and none of the chunk's bytes read: a reader that skims ahead (the
  // merge's discovery of CPUs reads thousands of chunk headers) maps no page, so the kernel
  // does not map and unmap the file twice. Fills `out` and `usable` and returns what is wrong, as
  // Next does: a window cut short by the end of the file is usable, with the error saying so.
  std::optional<Error> PeekChunk(uint64_t offset, Chunk& out, bool& usable) const;
  // Starts again from the beginning (for a second pass); clears error().
  void Rewind();

  std::span<const std::byte> bytes() const { return bytes_; }
  uint64_t size() const { return bytes_.size(); }
  uint64_t offset() const { return offset_; }

 private:
  TraceFileReader() = default;
  std::span<const std::byte> bytes_;
  void* map_ = nullptr;  // owned mapping, or null for FromBytes
  int fd_ = -1;          // the mapped file, kept open for PeekChunk (-1 for FromBytes)
  uint64_t offset_ = 0;
  uint64_t released_ = 0;
  std::optional<Error> error_;
};

// Writes a xentrace file. Every write goes straight to the kernel (no hidden user-space buffer
// beyond one chunk), errors such as a full disk are returned, never dropped.
class TraceFileWriter {
 public:
  static Result<TraceFileWriter> Create(const std::string& path, bool append = false);
  // Writes to an already open descriptor (not closed by the writer).
  static TraceFileWriter FromFd(int fd);

  TraceFileWriter(TraceFileWriter&&) noexcept;
  TraceFileWriter& operator=(TraceFileWriter&&) noexcept;
  ~TraceFileWriter();

  // One chunk: a header and the window, the window given in one or two parts (a wrapped ring).
  Status WriteChunk(uint32_t cpu, std::span<const std::byte> part1,
                    std::span<const std::byte> part2 = {});
  Status Sync();
  Status Close();
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  TraceFileWriter() = default;
  int fd_ = -1;
  bool owns_fd_ = false;
  uint64_t bytes_written_ = 0;
};

}  // namespace tracefmt
