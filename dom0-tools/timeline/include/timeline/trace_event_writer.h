// timeline/trace_event_writer.h — Chrome/Perfetto trace-event JSON, written as it is produced.
//
// The format (the "JSON Object Format" of Chrome's trace-event spec, which the Perfetto UI and
// chrome://tracing open) is one object {"traceEvents": [...], ...}. Each event is written the
// moment it is complete, so memory does not grow with the trace. Times are given in nanoseconds
// and written as microseconds with three decimals ("1234.567"), exactly, so a slice's `ts + dur`
// is the next slice's `ts` to the nanosecond.
//
//   TraceEventWriter out(stdout);
//   out.ProcessName(/*pid=*/1, "domain 1 (g1)");
//   out.Complete({.pid = 1, .tid = 65536, .name = "running", .ts_ns = 0, .dur_ns = 1500});
//   tracefmt::Status done = out.Finish(/*other_data=*/{});
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tracefmt/result.h"

namespace xenbake::timeline {

// "1234.567": nanoseconds as microseconds, exact.
std::string FormatMicros(uint64_t ns);

// A complete slice (ph "X").
struct SliceEvent {
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string_view name;
  std::string_view category;
  uint64_t ts_ns = 0;
  uint64_t dur_ns = 0;
  std::string_view args_json;  // a JSON object ("{...}") or empty for none
};

// An instant event (ph "i"). Scope "g" draws across the whole timeline, "p" across the process,
// "t" on its thread.
struct InstantEvent {
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string_view name;
  std::string_view category;
  uint64_t ts_ns = 0;
  char scope = 't';
  std::string_view args_json;
};

class TraceEventWriter {
 public:
  // `out` is not owned and must outlive the writer. Writing starts at once ("{"traceEvents":[").
  explicit TraceEventWriter(std::FILE* out);
  TraceEventWriter(const TraceEventWriter&) = delete;
  TraceEventWriter& operator=(const TraceEventWriter&) = delete;

  // Metadata (ph "M"): names and display order of processes and threads.
  void ProcessName(uint32_t pid, std::string_view name);
  void ProcessSortIndex(uint32_t pid, int64_t index);
  void ThreadName(uint32_t pid, uint32_t tid, std::string_view name);
  void ThreadSortIndex(uint32_t pid, uint32_t tid, int64_t index);

  void Complete(const SliceEvent& slice);
  void Instant(const InstantEvent& instant);
  // A counter sample (ph "C"): the track `name` of process `pid` takes `value` from `ts_ns` on.
  void Counter(uint32_t pid, std::string_view name, uint64_t ts_ns, std::string_view series,
               int64_t value);

  // Closes the event list, adds `other_data` (free-form facts about the conversion) and flushes.
  // An error when any write failed (a full disk, a closed pipe).
  tracefmt::Status Finish(const nlohmann::json& other_data);

  uint64_t events_written() const { return events_; }

 private:
  void Event(std::string_view body);
  void FlushBuffer();

  std::FILE* out_;
  std::string buffer_;  // written out in blocks of kFlushBytes
  uint64_t events_ = 0;
  bool write_failed_ = false;
  int write_errno_ = 0;
  static constexpr size_t kFlushBytes = 1 << 16;
};

// A JSON string literal (quoted, escaped) for text that is already safe to show.
std::string JsonString(std::string_view text);

}  // namespace xenbake::timeline
