// xenbaked/publish/snapshot_reader.h — reads the daemon's shared-memory snapshot (for
// xenbake-top and anything else on the host). Read-only: a reader can never disturb the daemon.
//
//   auto reader = SnapshotReader::Open("/dev/shm/xenbaked");
//   if (!reader) die(reader.error().Describe());   // missing, no permission, wrong version, short
//   auto snap = reader->Read();
//   if (!snap) die(snap.error().Describe());
//   switch (reader->LivenessOf(*snap)) {
//     case Liveness::kStale: warn("xenbaked has not published for {} s", ...); break;
//     case Liveness::kStopped: warn("xenbaked stopped"); break;
//     case Liveness::kLive: break;
//   }
//   for (const shm::DomainEntry& d : snap->domains) show(d);
//
// Read() follows the daemon when it moves to a larger region or restarts (a new file at the path).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tracefmt/result.h"
#include "xenbaked/publish/snapshot_layout.h"

namespace xenbaked::publish {

enum class Liveness {
  kLive,
  kStale,    // no publication for more than `stale_periods` periods: the daemon is hung or gone
  kStopped,  // the daemon shut down cleanly
};

struct SnapshotReaderOptions {
  uint32_t max_retries = 1000;  // sequence-lock retries before Read() reports the region busy
  uint32_t stale_periods = 3;
  // CLOCK_MONOTONIC in ns (the heartbeat's clock); injected for tests.
  std::function<uint64_t()> monotonic_clock;
};

// Pure: a heartbeat's liveness at `now_monotonic_ns`.
Liveness LivenessOf(const shm::Heartbeat& heartbeat, uint64_t now_monotonic_ns,
                    uint32_t stale_periods);

class SnapshotReader {
 public:
  // Errors: kNotFound (no file: is xenbaked running?), kIo (e.g. no permission), kUnsupported
  // (another layout version), kTruncated (a region shorter than its header says), kCorrupt.
  static tracefmt::Result<SnapshotReader> Open(const std::string& path,
                                               SnapshotReaderOptions options = {});

  SnapshotReader(SnapshotReader&&) noexcept;
  SnapshotReader& operator=(SnapshotReader&&) noexcept;
  ~SnapshotReader();

  // One consistent snapshot. Retries while the writer is mid-publication, at most max_retries
  // times (then an error: a writer stuck mid-write is a hung daemon).
  tracefmt::Result<shm::Snapshot> Read();
  Liveness LivenessOf(const shm::Snapshot& snapshot) const;
  // Retries the last Read() needed (for tests and diagnostics).
  uint32_t last_retries() const { return last_retries_; }
  const shm::Geometry& geometry() const { return geometry_; }

 private:
  SnapshotReader() = default;
  tracefmt::Result<shm::Snapshot> ReadOnce();
  bool PathNowNamesAnotherFile() const;
  void Unmap();

  std::string path_;
  SnapshotReaderOptions options_;
  shm::Geometry geometry_;
  const void* region_ = nullptr;
  size_t mapped_bytes_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::vector<uint64_t> copy_;  // the region copied out under the lock, word-aligned
  uint32_t last_retries_ = 0;
};

}  // namespace xenbaked::publish
