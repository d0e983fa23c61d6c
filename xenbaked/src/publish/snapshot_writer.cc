#include "xenbaked/publish/snapshot_writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

#include "xenbaked/publish/unique_fd.h"

namespace xenbaked::publish {

using tracefmt::ErrorCode;
using tracefmt::MakeError;
using tracefmt::MakeSystemError;
using tracefmt::Status;

SnapshotWriter::SnapshotWriter(SnapshotWriter&& other) noexcept
    : config_(std::move(other.config_)),
      geometry_(other.geometry_),
      region_(std::exchange(other.region_, nullptr)),
      image_(std::move(other.image_)),
      publish_count_(other.publish_count_) {}

SnapshotWriter& SnapshotWriter::operator=(SnapshotWriter&& other) noexcept {
  if (this != &other) {
    Unmap();
    config_ = std::move(other.config_);
    geometry_ = other.geometry_;
    region_ = std::exchange(other.region_, nullptr);
    image_ = std::move(other.image_);
    publish_count_ = other.publish_count_;
  }
  return *this;
}

SnapshotWriter::~SnapshotWriter() {
  Unmap();
}

void SnapshotWriter::Unmap() {
  if (region_ != nullptr) ::munmap(region_, geometry_.region_bytes);
  region_ = nullptr;
}

tracefmt::Result<SnapshotWriter> SnapshotWriter::Create(SnapshotWriterConfig config) {
  if (config.path.empty() || config.domain_capacity == 0 || config.cpu_capacity == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "snapshot path and capacities must be set");
  }
  SnapshotWriter writer;
  writer.config_ = std::move(config);
  if (Status s = writer.CreateRegion(writer.config_.domain_capacity, writer.config_.cpu_capacity);
      !s) {
    return s.error();
  }
  return writer;
}

// Makes a new region under a temporary name, then renames it over the path: readers only ever
// find a complete region there. The old region, if any, is marked superseded afterwards.
Status SnapshotWriter::CreateRegion(uint32_t domain_capacity, uint32_t cpu_capacity) {
  const shm::Geometry geometry = shm::MakeGeometry(domain_capacity, cpu_capacity);
  const std::string temp = fmt::format("{}.new-{}", config_.path, ::getpid());
  ::unlink(temp.c_str());
  UniqueFd fd(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return MakeSystemError(fmt::format("cannot create {}", temp));
  auto fail = [&temp](std::string what) {
    tracefmt::Error e = MakeSystemError(std::move(what));
    ::unlink(temp.c_str());
    return e;
  };
  if (config_.group && ::fchown(fd.get(), uid_t(-1), *config_.group) != 0) {
    return fail(fmt::format("cannot give {} to group {}", temp, *config_.group));
  }
  if (::fchmod(fd.get(), config_.mode) != 0) return fail(fmt::format("cannot chmod {}", temp));
  if (::ftruncate(fd.get(), off_t(geometry.region_bytes)) != 0) {
    return fail(fmt::format("cannot size {} to {} bytes", temp, geometry.region_bytes));
  }
  void* region =
      ::mmap(nullptr, geometry.region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (region == MAP_FAILED) return fail(fmt::format("cannot map {}", temp));
  std::vector<uint64_t> image(geometry.region_bytes / 8, 0);
  std::span<std::byte> image_bytes = std::as_writable_bytes(std::span(image));
  shm::EncodeStaticHeader(geometry, image_bytes);
  tracefmt::Store64(image_bytes.data() + shm::kOffState, uint64_t(shm::RegionState::kRunning));
  // No reader can see the new region yet: a plain copy is enough.
  std::memcpy(region, image.data(), shm::kHeaderBytes);
  if (::rename(temp.c_str(), config_.path.c_str()) != 0) {
    ::munmap(region, geometry.region_bytes);
    return fail(fmt::format("cannot rename {} to {}", temp, config_.path));
  }
  if (region_ != nullptr) {
    SetState(shm::RegionState::kSuperseded);
    Unmap();
  }
  region_ = region;
  geometry_ = geometry;
  image_ = std::move(image);
  return {};
}

void SnapshotWriter::CopyLocked(size_t used_bytes) {
  auto* words = static_cast<uint64_t*>(region_);
  std::atomic_ref<uint64_t> seq(words[shm::kOffSeq / 8]);
  const uint64_t before = seq.load(std::memory_order_relaxed);
  seq.store(before + 1, std::memory_order_relaxed);
  // Orders the odd sequence before every data store below (pairs with the readers' acquire
  // fence after their data loads).
  std::atomic_thread_fence(std::memory_order_release);
  const size_t end = (used_bytes + 7) / 8;
  for (size_t i = shm::kStaticHeaderBytes / 8; i < end; ++i) {
    if (i == shm::kOffSeq / 8) continue;
    std::atomic_ref<uint64_t>(words[i]).store(image_[i], std::memory_order_relaxed);
  }
  seq.store(before + 2, std::memory_order_release);
}

void SnapshotWriter::SetState(shm::RegionState state) {
  tracefmt::Store64(std::as_writable_bytes(std::span(image_)).data() + shm::kOffState,
                    uint64_t(state));
  CopyLocked(shm::kHeaderBytes);
}

Status SnapshotWriter::Publish(const PublishView& view) {
  const size_t cpus = std::max(view.totals.cpus.size(), view.health.cpus.size());
  if (view.totals.domains.size() > geometry_.domain_capacity || cpus > geometry_.cpu_capacity) {
    const auto grown = [](size_t needed, uint32_t capacity) {
      return uint32_t(std::max<size_t>(capacity, std::bit_ceil(needed)));
    };
    if (Status s = CreateRegion(grown(view.totals.domains.size(), geometry_.domain_capacity),
                                grown(cpus, geometry_.cpu_capacity));
        !s) {
      return s;
    }
  }
  ++publish_count_;
  const size_t used = shm::EncodeDynamic(view, shm::RegionState::kRunning, publish_count_,
                                         geometry_, std::as_writable_bytes(std::span(image_)));
  CopyLocked(used);
  return {};
}

void SnapshotWriter::MarkStopped() {
  if (region_ != nullptr) SetState(shm::RegionState::kStopped);
}

}  // namespace xenbaked::publish
