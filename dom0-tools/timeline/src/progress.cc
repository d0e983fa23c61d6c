#include "progress.h"

#include <fmt/format.h>

namespace xenbake::timeline {

void TerminalProgress::Update(uint64_t done_bytes, uint64_t total_bytes,
                              const TimelineStats& stats) {
  if (tty_ == nullptr) return;
  const std::string where = total_bytes != 0 ? fmt::format("{:3}%", done_bytes * 100 / total_bytes)
                                             : fmt::format("{} MiB", done_bytes >> 20);
  fmt::print(tty_, "\rxenbake-timeline: {}  {} records  {} slices  {} lost\033[K", where,
             stats.records, stats.slices, stats.lost_records);
  std::fflush(tty_);
  shown_ = true;
}

void TerminalProgress::Clear() {
  if (tty_ == nullptr || !shown_) return;
  fmt::print(tty_, "\r\033[K");
  std::fflush(tty_);
  shown_ = false;
}

}  // namespace xenbake::timeline
