// top/snapshot_feed.h — the daemon's shared-memory snapshot as a sequence of TopModels.
//
// Opening fails with a message a person can act on (no daemon, no permission, another layout
// version, a damaged region). Once open, a failed read or a vanished daemon does not end the
// view: the model says so (DaemonState::kGone) and the next read tries to reopen.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "top/top_model.h"
#include "tracefmt/result.h"
#include "xenbaked/publish/snapshot_reader.h"

namespace xenbake::top {

class SnapshotFeed {
 public:
  // `monotonic_clock`: CLOCK_MONOTONIC in ns (the heartbeat's clock); injected for tests.
  static tracefmt::Result<SnapshotFeed> Open(const std::string& path,
                                             std::function<uint64_t()> monotonic_clock = {});

  // The newest figures, or the last ones marked gone with the reason.
  TopModel Next();

 private:
  SnapshotFeed(std::string path, std::function<uint64_t()> clock,
               xenbaked::publish::SnapshotReader reader);

  std::string path_;
  std::function<uint64_t()> clock_;
  std::optional<xenbaked::publish::SnapshotReader> reader_;
  TopModel last_;
};

// What an open failure means, for a person ("is xenbaked running with --shm-name?").
std::string ExplainOpenError(const tracefmt::Error& error, const std::string& path);

}  // namespace xenbake::top
