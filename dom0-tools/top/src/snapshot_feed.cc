#include "top/snapshot_feed.h"

#include <fmt/format.h>
#include <time.h>

#include <cstring>

namespace xenbake::top {
namespace {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

xenbaked::publish::SnapshotReaderOptions ReaderOptions(const std::function<uint64_t()>& clock) {
  xenbaked::publish::SnapshotReaderOptions options;
  options.monotonic_clock = clock;
  return options;
}

}  // namespace

std::string ExplainOpenError(const tracefmt::Error& error, const std::string& path) {
  // The reader's messages name the path already; each case says it once, with what to do.
  const std::string why =
      error.sys_errno != 0 ? fmt::format(" ({})", std::strerror(error.sys_errno)) : "";
  switch (error.code) {
    case tracefmt::ErrorCode::kNotFound:
      return fmt::format(
          "no xenbaked snapshot at {}: is xenbaked running? It publishes /dev/shm/xenbaked "
          "unless started with --shm-name NAME (then: xenbake-top --shm /dev/shm/NAME)",
          path);
    case tracefmt::ErrorCode::kUnsupported:
      return fmt::format("{}: written by another xenbaked version", error.message);
    case tracefmt::ErrorCode::kIo:
      return fmt::format("{}{}: xenbake-top needs root or the daemon's group", error.message, why);
    default:
      return fmt::format("not a usable xenbaked snapshot: {}{}", error.message, why);
  }
}

tracefmt::Result<SnapshotFeed> SnapshotFeed::Open(const std::string& path,
                                                  std::function<uint64_t()> monotonic_clock) {
  if (!monotonic_clock) monotonic_clock = MonotonicNs;
  tracefmt::Result<xenbaked::publish::SnapshotReader> reader =
      xenbaked::publish::SnapshotReader::Open(path, ReaderOptions(monotonic_clock));
  if (!reader) return reader.error();
  return SnapshotFeed(path, std::move(monotonic_clock), std::move(*reader));
}

SnapshotFeed::SnapshotFeed(std::string path, std::function<uint64_t()> clock,
                           xenbaked::publish::SnapshotReader reader)
    : path_(std::move(path)), clock_(std::move(clock)), reader_(std::move(reader)) {}

TopModel SnapshotFeed::Next() {
  if (!reader_) {
    tracefmt::Result<xenbaked::publish::SnapshotReader> reopened =
        xenbaked::publish::SnapshotReader::Open(path_, ReaderOptions(clock_));
    if (!reopened) {
      last_.state = DaemonState::kGone;
      last_.warning = "xenbaked is gone: " + ExplainOpenError(reopened.error(), path_);
      return last_;
    }
    reader_.emplace(std::move(*reopened));
  }
  tracefmt::Result<xenbaked::publish::shm::Snapshot> snapshot = reader_->Read();
  if (!snapshot) {
    reader_.reset();
    last_.state = DaemonState::kGone;
    last_.warning =
        fmt::format("cannot read xenbaked's snapshot: {}; retrying", snapshot.error().Describe());
    return last_;
  }
  last_ = BuildTopModel(*snapshot, reader_->LivenessOf(*snapshot), clock_());
  return last_;
}

}  // namespace xenbake::top
