#include "xenbaked/publish/snapshot_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <span>
#include <utility>

#include "tracefmt/record.h"
#include "xenbaked/publish/unique_fd.h"

namespace xenbaked::publish {

using tracefmt::ErrorCode;
using tracefmt::MakeError;
using tracefmt::MakeSystemError;

namespace {
uint64_t MonotonicNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

// Relaxed word loads: the region is written concurrently by the daemon; the sequence check
// decides afterwards whether what was loaded is consistent.
void CopyWords(const uint64_t* from, uint64_t* to, size_t first_byte, size_t end_byte) {
  for (size_t i = first_byte / 8; i < (end_byte + 7) / 8; ++i) {
    to[i] =
        std::atomic_ref<uint64_t>(const_cast<uint64_t&>(from[i])).load(std::memory_order_relaxed);
  }
}
}  // namespace

Liveness LivenessOf(const shm::Heartbeat& heartbeat, uint64_t now_monotonic_ns,
                    uint32_t stale_periods) {
  if (heartbeat.state == shm::RegionState::kStopped) return Liveness::kStopped;
  const uint64_t age = now_monotonic_ns > heartbeat.publish_monotonic_ns
                           ? now_monotonic_ns - heartbeat.publish_monotonic_ns
                           : 0;
  // Never published, or silent for longer than the allowed number of periods.
  if (heartbeat.publish_count == 0 || age > uint64_t{stale_periods} * heartbeat.period_ns) {
    return Liveness::kStale;
  }
  return Liveness::kLive;
}

SnapshotReader::SnapshotReader(SnapshotReader&& other) noexcept
    : path_(std::move(other.path_)),
      options_(std::move(other.options_)),
      geometry_(other.geometry_),
      region_(std::exchange(other.region_, nullptr)),
      mapped_bytes_(other.mapped_bytes_),
      dev_(other.dev_),
      ino_(other.ino_),
      copy_(std::move(other.copy_)),
      last_retries_(other.last_retries_) {}

SnapshotReader& SnapshotReader::operator=(SnapshotReader&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    options_ = std::move(other.options_);
    geometry_ = other.geometry_;
    region_ = std::exchange(other.region_, nullptr);
    mapped_bytes_ = other.mapped_bytes_;
    dev_ = other.dev_;
    ino_ = other.ino_;
    copy_ = std::move(other.copy_);
    last_retries_ = other.last_retries_;
  }
  return *this;
}

SnapshotReader::~SnapshotReader() {
  Unmap();
}

void SnapshotReader::Unmap() {
  if (region_ != nullptr) ::munmap(const_cast<void*>(region_), mapped_bytes_);
  region_ = nullptr;
}

tracefmt::Result<SnapshotReader> SnapshotReader::Open(const std::string& path,
                                                      SnapshotReaderOptions options) {
  // O_NONBLOCK: a FIFO at the path would otherwise block the open until a writer came (forever,
  // for `xenbake-top --shm` given the wrong path); the type check below then refuses it.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd && errno == ENOENT) {
    return MakeError(ErrorCode::kNotFound,
                     fmt::format("no snapshot at {}: is xenbaked running?", path));
  }
  if (!fd) return MakeSystemError(fmt::format("cannot open the snapshot {}", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return MakeSystemError(fmt::format("cannot stat {}", path));
  // /dev/shm is writable by everyone: only a region made by root (or by us) is the daemon's.
  if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != ::geteuid())) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} is not a regular file owned by root: not trusted", path));
  }
  if (uint64_t(st.st_size) < shm::kHeaderBytes) {
    return MakeError(
        ErrorCode::kTruncated,
        fmt::format("{} is {} bytes, shorter than a snapshot header", path, st.st_size), 0);
  }
  const size_t size = size_t(st.st_size);
  const void* region = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (region == MAP_FAILED) return MakeSystemError(fmt::format("cannot map {}", path));
  SnapshotReader reader;
  reader.region_ = region;
  reader.mapped_bytes_ = size;
  reader.path_ = path;
  reader.options_ = std::move(options);
  if (!reader.options_.monotonic_clock) reader.options_.monotonic_clock = MonotonicNow;
  reader.dev_ = st.st_dev;
  reader.ino_ = st.st_ino;
  // The static header never changes after the region is renamed into place.
  tracefmt::Result<shm::Geometry> geometry =
      shm::ParseStaticHeader({static_cast<const std::byte*>(region), size});
  if (!geometry) {
    tracefmt::Error e = geometry.error();
    e.message = fmt::format("{}: {}", path, e.message);
    return e;
  }
  reader.geometry_ = *geometry;
  reader.copy_.assign(reader.geometry_.region_bytes / 8, 0);
  return reader;
}

tracefmt::Result<shm::Snapshot> SnapshotReader::ReadOnce() {
  const auto* words = static_cast<const uint64_t*>(region_);
  std::atomic_ref<uint64_t> seq(const_cast<uint64_t&>(words[shm::kOffSeq / 8]));
  const shm::Geometry& g = geometry_;
  std::span<const std::byte> copy = std::as_bytes(std::span(copy_));
  for (last_retries_ = 0; last_retries_ <= options_.max_retries; ++last_retries_) {
    const uint64_t before = seq.load(std::memory_order_acquire);
    if (before & 1) {
      if (last_retries_ > 16) ::sched_yield();  // the writer is mid-copy (microseconds)
      continue;
    }
    CopyWords(words, copy_.data(), 0, shm::kHeaderBytes);
    // Counts come from this very copy; if torn, the sequence check below rejects it.
    const uint32_t domains =
        std::min(tracefmt::Load32(copy.data() + shm::kOffDomainCount), g.domain_capacity);
    const uint32_t cpus =
        std::min(tracefmt::Load32(copy.data() + shm::kOffCpuCount), g.cpu_capacity);
    CopyWords(words, copy_.data(), g.health_offset, g.health_offset + g.health_bytes);
    CopyWords(words, copy_.data(), g.domains_offset,
              g.domains_offset + size_t{domains} * g.domain_bytes);
    CopyWords(words, copy_.data(), g.cpus_offset, g.cpus_offset + size_t{cpus} * g.cpu_bytes);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq.load(std::memory_order_relaxed) == before) return shm::DecodeRegion(copy, g);
  }
  return MakeError(ErrorCode::kIo,
                   fmt::format("{}: the writer held the snapshot through {} attempts (hung "
                               "mid-publication?)",
                               path_, options_.max_retries));
}

bool SnapshotReader::PathNowNamesAnotherFile() const {
  struct stat st {};
  return ::stat(path_.c_str(), &st) == 0 && (st.st_dev != dev_ || st.st_ino != ino_);
}

tracefmt::Result<shm::Snapshot> SnapshotReader::Read() {
  tracefmt::Result<shm::Snapshot> snap = ReadOnce();
  const bool moved = snap && snap->heartbeat.state == shm::RegionState::kSuperseded;
  const bool quiet = snap && LivenessOf(*snap) != Liveness::kLive;
  if ((moved || quiet) && PathNowNamesAnotherFile()) {
    tracefmt::Result<SnapshotReader> fresh = Open(path_, options_);
    if (!fresh) return fresh.error();
    *this = std::move(*fresh);
    return ReadOnce();
  }
  return snap;
}

Liveness SnapshotReader::LivenessOf(const shm::Snapshot& snapshot) const {
  return publish::LivenessOf(snapshot.heartbeat, options_.monotonic_clock(),
                             options_.stale_periods);
}

}  // namespace xenbaked::publish
