#include "timeline/chunk_stream.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "tracefmt/trace_file.h"

namespace xenbake::timeline {
namespace {
constexpr uint32_t kMaxPlausibleCpu = 1u << 16;
}  // namespace

bool ChunkStream::Fill(size_t want) {
  if (buffer_.size() < want) buffer_.resize(want);
  while (filled_ < want) {
    const ssize_t n = ::read(fd_, buffer_.data() + filled_, want - filled_);
    if (n > 0) {
      filled_ += static_cast<size_t>(n);
    } else if (n == 0) {
      return false;
    } else if (errno != EINTR) {
      error_ = tracefmt::MakeSystemError("reading the trace failed");
      error_->offset = offset_ + filled_;
      return false;
    }
  }
  return true;
}

ChunkStream::State ChunkStream::Next(OwnedChunk& out) {
  if (error_) return State::kError;
  if (!Fill(tracefmt::kChunkHeaderBytes)) return error_ ? State::kError : State::kEndOfData;
  const std::byte* header = buffer_.data();
  const uint32_t marker = tracefmt::Load32(header);
  const uint32_t cpu = tracefmt::Load32(header + 4);
  const uint32_t window_untrusted = tracefmt::Load32(header + 8);
  if (marker != tracefmt::ev::kCpuChangeHeader) {
    error_ =
        tracefmt::MakeError(tracefmt::ErrorCode::kCorrupt,
                            fmt::format("expected a CPU_CHANGE header {:#010x}, found {:#010x}",
                                        tracefmt::ev::kCpuChangeHeader, marker),
                            offset_);
    return State::kError;
  }
  if (cpu >= kMaxPlausibleCpu || window_untrusted > kMaxWindowBytes) {
    error_ = tracefmt::MakeError(
        tracefmt::ErrorCode::kCorrupt,
        fmt::format("CPU_CHANGE header claims CPU {} and {} bytes: not plausible", cpu,
                    window_untrusted),
        offset_);
    return State::kError;
  }
  if (!Fill(tracefmt::kChunkHeaderBytes + window_untrusted)) {
    return error_ ? State::kError : State::kEndOfData;
  }
  out.cpu = cpu;
  out.file_offset = offset_;
  out.bytes.assign(buffer_.begin() + tracefmt::kChunkHeaderBytes,
                   buffer_.begin() + tracefmt::kChunkHeaderBytes + window_untrusted);
  offset_ += tracefmt::kChunkHeaderBytes + window_untrusted;
  filled_ = 0;
  return State::kChunk;
}

}  // namespace xenbake::timeline
