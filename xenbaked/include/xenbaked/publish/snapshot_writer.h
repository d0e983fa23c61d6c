// xenbaked/publish/snapshot_writer.h — the daemon's side of the shared-memory snapshot.
//
// The region is a file (by default /dev/shm/xenbaked, i.e. what shm_open("/xenbaked") names)
// created mode 0640, owned by root and a configurable group: only they can read it, nobody else
// can write it. It is created under a temporary name and renamed into place, so a reader never
// maps a half-made region and a file planted at the path is replaced, not trusted.
//
// Sizing: the region holds `domain_capacity` domains and `cpu_capacity` CPUs. When a publication
// needs more, the writer makes a region twice as large (or more), renames it over the path and
// marks the old one superseded; readers reopen. Nothing is ever dropped for lack of room.
//
//   auto writer = SnapshotWriter::Create({.path = "/dev/shm/xenbaked", .group = gid});
//   each interval: writer->Publish(view);      // one sequence-locked copy, never blocks
//   at shutdown:   writer->MarkStopped();      // readers then say "stopped", not "stale"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tracefmt/result.h"
#include "xenbaked/publish/publish_view.h"
#include "xenbaked/publish/snapshot_layout.h"

namespace xenbaked::publish {

struct SnapshotWriterConfig {
  std::string path = "/dev/shm/xenbaked";
  uint32_t domain_capacity = 1024;  // grows by doubling when exceeded
  uint32_t cpu_capacity = 256;
  mode_t mode = 0640;
  std::optional<gid_t> group;  // the region's group (its owner stays the daemon's user, root)
};

class SnapshotWriter {
 public:
  static tracefmt::Result<SnapshotWriter> Create(SnapshotWriterConfig config);

  SnapshotWriter(SnapshotWriter&&) noexcept;
  SnapshotWriter& operator=(SnapshotWriter&&) noexcept;
  ~SnapshotWriter();

  // Publishes one consistent snapshot. Errors: only when the region had to grow and could not.
  tracefmt::Status Publish(const PublishView& view);
  // Marks the region stopped (a clean shutdown); the last figures stay readable.
  void MarkStopped();

  const shm::Geometry& geometry() const { return geometry_; }
  uint64_t publish_count() const { return publish_count_; }
  const std::string& path() const { return config_.path; }

 private:
  SnapshotWriter() = default;
  tracefmt::Status CreateRegion(uint32_t domain_capacity, uint32_t cpu_capacity);
  // Copies image_[kStaticHeaderBytes, used_bytes) into the region under the sequence lock.
  void CopyLocked(size_t used_bytes);
  void SetState(shm::RegionState state);
  void Unmap();

  SnapshotWriterConfig config_;
  shm::Geometry geometry_;
  void* region_ = nullptr;
  std::vector<uint64_t> image_;  // the next snapshot, built privately, word-aligned
  uint64_t publish_count_ = 0;
};

}  // namespace xenbaked::publish
