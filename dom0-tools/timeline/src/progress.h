// Progress on a terminal: one line, rewritten in place, cleared at the end. Silent when stderr is
// not a terminal, so logs and pipes stay clean.
#pragma once

#include <cstdint>
#include <cstdio>

#include "timeline/timeline_builder.h"

namespace xenbake::timeline {

class TerminalProgress {
 public:
  // `tty` null: no progress at all.
  explicit TerminalProgress(std::FILE* tty) : tty_(tty) {}
  ~TerminalProgress() { Clear(); }
  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;

  void Update(uint64_t done_bytes, uint64_t total_bytes, const TimelineStats& stats);
  void Clear();

 private:
  std::FILE* tty_;
  bool shown_ = false;
};

}  // namespace xenbake::timeline
