#include "timeline/convert.h"

#include <algorithm>
#include <vector>

#include "timeline/chunk_stream.h"
#include "tracefmt/merge.h"
#include "tracefmt/record.h"

namespace xenbake::timeline {
namespace {

ConvertOutcome Close(TimelineBuilder& timeline, TraceEventWriter& writer,
                     std::optional<tracefmt::Error> input_error) {
  timeline.Finish();
  nlohmann::json summary = timeline.Summary();
  if (input_error) summary["input_error"] = input_error->Describe();
  ConvertOutcome outcome{.stats = timeline.stats(),
                         .input_error = std::move(input_error),
                         .output = writer.Finish(summary)};
  return outcome;
}

// The oldest TSC every CPU seen so far has reached: nothing older can still arrive.
uint64_t Watermark(const tracefmt::LiveMerger& merger, const std::vector<uint32_t>& cpus) {
  uint64_t watermark = ~uint64_t{0};
  for (uint32_t cpu : cpus) watermark = std::min(watermark, merger.last_tsc(cpu));
  return watermark;
}

}  // namespace

ConvertOutcome ConvertTraceFile(tracefmt::TraceFileReader& file, const TimelineConfig& config,
                                std::FILE* out, const ProgressFn& progress) {
  TraceEventWriter writer(out);
  TimelineBuilder timeline(config, writer);
  tracefmt::MergedTraceReader merged(file);
  tracefmt::MergedRecord m;
  uint64_t until_progress = kProgressRecords;
  while (merged.Next(m)) {
    timeline.Add(m);
    if (--until_progress == 0) {
      until_progress = kProgressRecords;
      if (progress) progress(m.file_offset, file.size(), timeline.stats());
    }
  }
  // The merge reports damage anywhere, a file that is noise from byte 0 included.
  std::optional<tracefmt::Error> input_error = merged.error();
  ConvertOutcome outcome = Close(timeline, writer, std::move(input_error));
  if (progress) progress(file.size(), file.size(), outcome.stats);
  return outcome;
}

ConvertOutcome ConvertTraceStream(int fd, const TimelineConfig& config, std::FILE* out,
                                  const StreamOptions& options, const ProgressFn& progress) {
  TraceEventWriter writer(out);
  TimelineBuilder timeline(config, writer);
  tracefmt::LiveMerger merger;
  std::vector<uint32_t> cpus;
  bool round_complete = false;
  ChunkStream stream(fd);
  OwnedChunk chunk;
  std::optional<tracefmt::Error> input_error;
  uint64_t until_progress = kProgressRecords;
  const auto sink = [&](const tracefmt::MergedRecord& m) {
    timeline.Add(m);
    if (--until_progress == 0) {
      until_progress = kProgressRecords;
      if (progress) progress(stream.offset(), 0, timeline.stats());
    }
  };
  for (;;) {
    const ChunkStream::State state = stream.Next(chunk);
    if (state == ChunkStream::State::kError) {
      input_error = stream.error();
      break;
    }
    if (state == ChunkStream::State::kEndOfData) {
      if (options.wait_for_more && options.wait_for_more()) continue;
      if (stream.partial_bytes() != 0) {
        input_error = tracefmt::MakeError(tracefmt::ErrorCode::kTruncated,
                                          "the trace ends inside a chunk", stream.offset());
      }
      break;
    }
    // A stream does not say how many CPUs it holds. xentrace writes one chunk per CPU with data
    // in turn, so once a CPU comes round again every CPU of that round has been met and the
    // watermark means something; until then nothing is emitted.
    if (std::count(cpus.begin(), cpus.end(), chunk.cpu)) {
      round_complete = true;
    } else {
      cpus.push_back(chunk.cpu);
    }
    tracefmt::RecordCursor cursor(chunk.bytes);
    tracefmt::Record rec;
    while (cursor.Next(rec)) merger.Push(chunk.cpu, rec);
    if (!cursor.AtEnd()) {
      input_error = tracefmt::MakeError(
          tracefmt::ErrorCode::kTruncated, "record cut short: its chunk ends inside it",
          chunk.file_offset + tracefmt::kChunkHeaderBytes + cursor.offset());
      break;
    }
    if (round_complete) merger.EmitUpTo(Watermark(merger, cpus), sink);
    // A CPU that has gone quiet holds the watermark back; past the bound, stop waiting for it.
    if (merger.pending() > options.max_pending_records) merger.EmitAll(sink);
  }
  merger.EmitAll(sink);
  ConvertOutcome outcome = Close(timeline, writer, std::move(input_error));
  if (progress) progress(stream.offset(), 0, outcome.stats);
  return outcome;
}

}  // namespace xenbake::timeline
