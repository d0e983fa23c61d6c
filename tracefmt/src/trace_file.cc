#include "tracefmt/trace_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>

#include "new_file.h"
#include "tracefmt/events.h"
#include "tracefmt/record.h"

namespace tracefmt {

namespace {
// No real host has this many CPUs; a larger id means the header is garbage, not a CPU.
constexpr uint32_t kMaxPlausibleCpu = 1u << 16;
// Mapped pages are released 4 MiB at a time: a madvise per ~200,000 records costs nothing
// measurable, and the pages a reader holds stay a few MiB whatever the file size.
constexpr uint64_t kReleaseGranularity = 4u << 20;
}  // namespace

namespace {
// Fills `out` as far as the file allows and returns what is wrong, if anything. `usable` says
// whether `out` holds a chunk worth delivering (a window cut short by the end of the file is).
// The header's bytes are read from `header` when given (a copy), from the file otherwise.
std::optional<Error> ParseChunkInto(std::span<const std::byte> file, uint64_t offset, Chunk& out,
                                    bool& usable, const std::byte* header = nullptr) {
  usable = false;
  const uint64_t remaining = file.size() - offset;
  if (remaining < kChunkHeaderBytes) {
    return MakeError(ErrorCode::kTruncated,
                     fmt::format("file ends inside a CPU_CHANGE header ({} of {} bytes)", remaining,
                                 kChunkHeaderBytes),
                     offset);
  }
  const std::byte* p = header != nullptr ? header : file.data() + offset;
  const uint32_t first_word = Load32(p);
  if (first_word != ev::kCpuChangeHeader) {
    return MakeError(ErrorCode::kCorrupt,
                     fmt::format("expected a CPU_CHANGE header {:#010x}, found {:#010x}",
                                 ev::kCpuChangeHeader, first_word),
                     offset);
  }
  out.cpu = Load32(p + 4);
  out.file_offset = offset;
  const uint32_t window = Load32(p + 8);
  if (out.cpu >= kMaxPlausibleCpu) {
    return MakeError(ErrorCode::kCorrupt,
                     fmt::format("CPU_CHANGE names CPU {}, not a plausible CPU id", out.cpu),
                     offset);
  }
  const uint64_t available = remaining - kChunkHeaderBytes;
  out.bytes = file.subspan(offset + kChunkHeaderBytes, std::min<uint64_t>(window, available));
  usable = true;
  if (window > available) {
    return MakeError(ErrorCode::kTruncated,
                     fmt::format("chunk for CPU {} claims {} bytes but the file has {} left",
                                 out.cpu, window, available),
                     offset);
  }
  return std::nullopt;
}
}  // namespace

Result<Chunk> ParseChunk(std::span<const std::byte> file, uint64_t offset) {
  Chunk chunk;
  bool usable = false;
  if (std::optional<Error> e = ParseChunkInto(file, offset, chunk, usable)) return *e;
  return chunk;
}

Error RecordCutShortError(const Chunk& chunk, size_t pos) {
  return MakeError(ErrorCode::kTruncated,
                   fmt::format("record on CPU {} cut short: its chunk ends {} bytes into it",
                               chunk.cpu, chunk.bytes.size() - pos),
                   chunk.data_offset() + pos);
}

Result<int> OpenRegularFileForReading(const std::string& path) {
  // O_NONBLOCK so that opening a FIFO returns at once (to be refused below); it changes nothing
  // for a regular file. O_NOCTTY: a terminal given as input must not become ours.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return MakeSystemError(fmt::format("cannot open {}", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Error e = MakeSystemError(fmt::format("cannot stat {}", path));
    ::close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} is not a regular file ({}): give a file", path,
                                 S_ISFIFO(st.st_mode)   ? "a FIFO"
                                 : S_ISDIR(st.st_mode)  ? "a directory"
                                 : S_ISSOCK(st.st_mode) ? "a socket"
                                                        : "a device"));
  }
  return fd;
}

Result<std::vector<std::byte>> ReadRegularFile(const std::string& path, uint64_t max_bytes,
                                               std::string_view what) {
  Result<int> opened = OpenRegularFileForReading(path);
  if (!opened) return opened.error();
  const int fd = *opened;
  const auto too_large = [&] {
    ::close(fd);
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} is larger than {} bytes: not {}", path, max_bytes, what));
  };
  struct stat st {};
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
  std::vector<std::byte> bytes;
  std::byte buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = MakeSystemError(fmt::format("cannot read {}", path));
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    if (bytes.size() + static_cast<uint64_t>(n) > max_bytes) return too_large();
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  ::close(fd);
  return bytes;
}

Result<TraceFileReader> TraceFileReader::Open(const std::string& path) {
  Result<int> opened = OpenRegularFileForReading(path);
  if (!opened) return opened.error();
  const int fd = *opened;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Error e = MakeSystemError(fmt::format("cannot stat {}", path));
    ::close(fd);
    return e;
  }
  TraceFileReader reader;
  if (st.st_size > 0) {
    void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      Error e = MakeSystemError(fmt::format("cannot map {}", path));
      ::close(fd);
      return e;
    }
    ::madvise(map, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
    reader.map_ = map;
    reader.bytes_ = {static_cast<const std::byte*>(map), static_cast<size_t>(st.st_size)};
    reader.fd_ = fd;
    return reader;
  }
  ::close(fd);
  return reader;
}

TraceFileReader TraceFileReader::FromBytes(std::span<const std::byte> bytes) {
  TraceFileReader reader;
  reader.bytes_ = bytes;
  return reader;
}

TraceFileReader::TraceFileReader(TraceFileReader&& other) noexcept {
  *this = std::move(other);
}

TraceFileReader& TraceFileReader::operator=(TraceFileReader&& other) noexcept {
  if (this != &other) {
    if (map_ != nullptr) ::munmap(map_, bytes_.size());
    bytes_ = std::exchange(other.bytes_, {});
    if (fd_ >= 0) ::close(fd_);
    map_ = std::exchange(other.map_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
    offset_ = std::exchange(other.offset_, 0);
    released_ = std::exchange(other.released_, 0);
    error_ = std::exchange(other.error_, std::nullopt);
  }
  return *this;
}

TraceFileReader::~TraceFileReader() {
  if (map_ != nullptr) ::munmap(map_, bytes_.size());
  if (fd_ >= 0) ::close(fd_);
}

Error EmptyFileError() {
  return MakeError(ErrorCode::kTruncated, "the file is empty: not one CPU_CHANGE header", 0);
}

bool TraceFileReader::Next(Chunk& out) {
  if (bytes_.empty() && !error_) error_ = EmptyFileError();
  if (error_ || offset_ >= bytes_.size()) return false;
  // Chunks before this one are done with; their pages can go (re-read if touched again).
  Release(offset_);
  bool usable = false;
  error_ = ParseChunkInto(bytes_, offset_, out, usable);
  if (!usable) return false;
  offset_ = error_ ? bytes_.size() : offset_ + kChunkHeaderBytes + out.bytes.size();
  return true;
}

void TraceFileReader::Release(uint64_t offset) {
  if (map_ == nullptr) return;
  if (offset < released_ + kReleaseGranularity) return;  // the common case: nothing to do yet
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t upto = (std::min<uint64_t>(offset, bytes_.size()) / page) * page;
  if (upto < released_ + kReleaseGranularity) return;
  // Clean file-backed pages: dropping them frees memory; touching them again re-reads the file.
  ::madvise(static_cast<char*>(map_) + released_, upto - released_, MADV_DONTNEED);
  released_ = upto;
}

std::optional<Error> TraceFileReader::PeekChunk(uint64_t offset, Chunk& out, bool& usable) const {
  usable = false;
  if (offset > bytes_.size()) offset = bytes_.size();
  if (fd_ < 0 || bytes_.size() - offset < kChunkHeaderBytes)
    return ParseChunkInto(bytes_, offset, out, usable);
  std::array<std::byte, kChunkHeaderBytes> header{};
  size_t got = 0;
  while (got < header.size()) {
    const ssize_t n =
        ::pread(fd_, header.data() + got, header.size() - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return MakeSystemError(fmt::format("cannot read the CPU_CHANGE header at offset {}", offset));
    }
    got += static_cast<size_t>(n);
  }
  return ParseChunkInto(bytes_, offset, out, usable, header.data());
}

void TraceFileReader::Rewind() {
  offset_ = 0;
  error_.reset();
  // A second pass starts from the top: drop every page of the first, so the two passes together
  // hold no more than one release window.
  if (map_ != nullptr && released_ < bytes_.size()) {
    ::madvise(map_, bytes_.size(), MADV_DONTNEED);
  }
  released_ = 0;
}

// --- Writer
// ---------------------------------------------------------------------------------------

Result<TraceFileWriter> TraceFileWriter::Create(const std::string& path, bool append) {
  TraceFileWriter w;
  w.owns_fd_ = true;
  if (!append) {
    // A new file renamed over the path: an old capture (of whatever mode) or a link there is
    // replaced, never truncated or written through.
    Result<NewFile> file = NewFileBeside(path, kOutputFileMode);
    if (!file) return file.error();
    if (Status st = file->RenameTo(path); !st) return st.error();
    w.fd_ = file->ReleaseFd();
    return w;
  }
  w.fd_ =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, kOutputFileMode);
  if (w.fd_ < 0) return MakeSystemError(fmt::format("cannot open {}", path));
  struct stat st {};
  if (::fstat(w.fd_, &st) != 0) return MakeSystemError(fmt::format("cannot stat {}", path));
  if (!S_ISREG(st.st_mode))
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("{} is not a regular file", path));
  return w;
}

TraceFileWriter TraceFileWriter::FromFd(int fd) {
  TraceFileWriter w;
  w.fd_ = fd;
  return w;
}

TraceFileWriter::TraceFileWriter(TraceFileWriter&& other) noexcept {
  *this = std::move(other);
}

TraceFileWriter& TraceFileWriter::operator=(TraceFileWriter&& other) noexcept {
  if (this != &other) {
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    owns_fd_ = std::exchange(other.owns_fd_, false);
    bytes_written_ = std::exchange(other.bytes_written_, 0);
  }
  return *this;
}

TraceFileWriter::~TraceFileWriter() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

Status TraceFileWriter::WriteChunk(uint32_t cpu, std::span<const std::byte> part1,
                                   std::span<const std::byte> part2) {
  if (fd_ < 0) return MakeError(ErrorCode::kInvalidArgument, "trace file is closed");
  const uint64_t window = part1.size() + part2.size();
  if (window > UINT32_MAX)
    return MakeError(ErrorCode::kInvalidArgument, "a chunk window must fit in 32 bits");
  std::byte header[kChunkHeaderBytes];
  Store32(header, ev::kCpuChangeHeader);
  Store32(header + 4, cpu);
  Store32(header + 8, static_cast<uint32_t>(window));
  iovec iov[3] = {{header, sizeof header},
                  {const_cast<std::byte*>(part1.data()), part1.size()},
                  {const_cast<std::byte*>(part2.data()), part2.size()}};
  int first = 0;
  const int count = 3;
  uint64_t left = sizeof header + window;
  while (left > 0) {
    const ssize_t n = ::writev(fd_, iov + first, count - first);
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeSystemError(
          fmt::format("writing a chunk for CPU {} at byte {}", cpu, bytes_written_));
    }
    bytes_written_ += static_cast<uint64_t>(n);
    left -= static_cast<uint64_t>(n);
    // Step over what was written, which may end inside an iovec.
    size_t done = static_cast<size_t>(n);
    while (first < count && done >= iov[first].iov_len) {
      done -= iov[first].iov_len;
      ++first;
    }
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  return Status::Ok();
}

Status TraceFileWriter::Sync() {
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) return MakeSystemError("fdatasync of trace file");
  return Status::Ok();
}

Status TraceFileWriter::Close() {
  if (fd_ < 0) return Status::Ok();
  const int fd = std::exchange(fd_, -1);
  if (owns_fd_ && ::close(fd) != 0) return MakeSystemError("closing trace file");
  return Status::Ok();
}

}  // namespace tracefmt
