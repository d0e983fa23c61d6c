// timeline/convert.h — a whole conversion: a xentrace file or stream to a timeline JSON file.
//
// From a file, records are merged across CPUs by tracefmt::MergedTraceReader. From a stream (a
// pipe, stdin, or a capture still being written), chunks are read as they come and merged with
// tracefmt::LiveMerger up to the oldest point every CPU has reached (once every CPU has come
// round in the stream: xentrace writes the CPUs in turn). Either way each event is
// written as soon as it is complete, so memory is bounded by the number of vCPUs (and, for a
// stream, by how far one CPU's chunks run ahead of another's), not by the trace's size.
//
// A damaged input does not lose the timeline: everything before the damage is converted, the JSON
// is closed properly, and `input_error` says what and where.
//
//   auto file = tracefmt::TraceFileReader::Open(path);
//   ConvertOutcome r = ConvertTraceFile(*file, {.cpu_khz = khz}, out_file);
//   if (r.input_error) warn(r.input_error->Describe());
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>

#include "timeline/timeline_builder.h"
#include "tracefmt/result.h"
#include "tracefmt/trace_file.h"

namespace xenbake::timeline {

struct ConvertOutcome {
  TimelineStats stats;
  std::optional<tracefmt::Error> input_error;  // damage met; everything before it was converted
  tracefmt::Status output;                     // failure writing the JSON
};

// Called every kProgressRecords records and once at the end: input bytes consumed, input size
// (0 when unknown, as for a pipe), and the counts so far.
using ProgressFn =
    std::function<void(uint64_t done_bytes, uint64_t total_bytes, const TimelineStats& stats)>;
inline constexpr uint64_t kProgressRecords = 1 << 16;

ConvertOutcome ConvertTraceFile(tracefmt::TraceFileReader& file, const TimelineConfig& config,
                                std::FILE* out, const ProgressFn& progress = {});

struct StreamOptions {
  // Called when the data has run out. True: look again (the capture is still growing — the
  // callback waits however it likes); false: finish. Unset: finish at the first end of data.
  std::function<bool()> wait_for_more;
  // Records held for the merge before a CPU that has gone quiet stops holding the others back.
  // Records that CPU delivers later may then be older than what was written; they are placed by
  // clamping (counted as anomalies), never dropped.
  size_t max_pending_records = 1 << 20;
};

ConvertOutcome ConvertTraceStream(int fd, const TimelineConfig& config, std::FILE* out,
                                  const StreamOptions& options, const ProgressFn& progress = {});

}  // namespace xenbake::timeline
