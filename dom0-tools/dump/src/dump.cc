#include "dom0tools/dump.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "render.h"
#include "tracefmt/clock.h"
#include "tracefmt/events.h"
#include "tracefmt/merge.h"
#include "tracefmt/summary.h"
#include "tracefmt/trace_file.h"

namespace dom0tools {

namespace {

using tracefmt::Error;
using tracefmt::MergedRecord;
using tracefmt::TscClock;

constexpr size_t kFlushBytes = 1 << 16;

// Collects output lines and writes them in large pieces; records printed before damage is met
// are flushed before the damage is reported, so stdout and stderr read in order.
class LineSink {
 public:
  explicit LineSink(std::FILE* out) : out_(out) {}
  ~LineSink() { Flush(); }
  void Line(std::string_view text) {
    buffer_.append(text);
    buffer_.push_back('\n');
    if (buffer_.size() >= kFlushBytes) Flush();
  }
  void Flush() {
    std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
    std::fflush(out_);
    buffer_.clear();
  }

 private:
  std::FILE* out_;
  std::string buffer_;
};

// The clock for nanoseconds: --cpu-khz, else the sidecar, else none (a warning only when the
// sidecar exists but cannot be read).
std::optional<TscClock> ChooseClock(const DumpOptions& o, std::FILE* err) {
  if (o.cpu_khz != 0) return TscClock(o.cpu_khz);
  tracefmt::Result<tracefmt::CaptureMeta> meta = tracefmt::ReadCaptureMeta(o.path);
  if (meta) return TscClock(meta->cpu_khz);
  if (meta.error().code != tracefmt::ErrorCode::kNotFound) {
    fmt::print(err, "xenbake-dump: warning: ignoring sidecar: {}\n", meta.error().Describe());
  }
  return std::nullopt;
}

std::string Render(const MergedRecord& m, const DumpOptions& o, const TscClock* clock) {
  return o.json ? RecordJson(m, clock).dump() : RecordText(m, clock);
}

// Records in file order: each chunk's CPU_CHANGE header, then its records.
std::vector<Error> DumpFileOrder(tracefmt::TraceFileReader& reader, const DumpOptions& o,
                                 const TscClock* clock, LineSink& sink) {
  std::vector<Error> damage;
  tracefmt::Chunk chunk;
  MergedRecord m;
  while (reader.Next(chunk)) {
    const std::byte* header = reader.bytes().data() + chunk.file_offset;
    m.cpu = chunk.cpu;
    m.tsc = 0;
    m.file_offset = chunk.file_offset;
    m.rec = tracefmt::Record{};
    m.rec.event = tracefmt::ev::kCpuChange;
    m.rec.extra_words = 2;
    m.rec.extra[0] = chunk.cpu;
    m.rec.extra[1] = tracefmt::Load32(header + 8);
    sink.Line(Render(m, o, clock));
    tracefmt::RecordCursor cursor(chunk.bytes);
    for (;;) {
      m.file_offset = chunk.data_offset() + cursor.offset();
      if (!cursor.Next(m.rec)) break;
      sink.Line(Render(m, o, clock));
    }
    if (!cursor.AtEnd()) damage.push_back(tracefmt::RecordCutShortError(chunk, cursor.offset()));
  }
  if (reader.error()) damage.push_back(*reader.error());
  return damage;
}

// Records of all CPUs merged by TSC.
std::vector<Error> DumpMerged(tracefmt::TraceFileReader& reader, const DumpOptions& o,
                              const TscClock* clock, LineSink& sink) {
  tracefmt::MergedTraceReader merged(reader);
  MergedRecord m;
  while (merged.Next(m)) sink.Line(Render(m, o, clock));
  if (merged.error()) return {*merged.error()};
  return {};
}

}  // namespace

int RunDump(const DumpOptions& o, std::FILE* out, std::FILE* err) {
  auto reader = tracefmt::TraceFileReader::Open(o.path);
  if (!reader) {
    fmt::print(err, "xenbake-dump: {}\n", reader.error().Describe());
    return cli::kExitFailure;
  }
  const std::optional<TscClock> clock = ChooseClock(o, err);
  const TscClock* clock_ptr = clock ? &*clock : nullptr;
  std::vector<Error> damage;
  {
    LineSink sink(out);
    if (o.summary) {
      const tracefmt::TraceSummary s = tracefmt::SummarizeTrace(*reader);
      damage = s.anomalies;
      if (o.json) {
        sink.Line(SummaryJson(s, o.path, clock_ptr).dump(2));
      } else {
        std::string text = SummaryText(s, o.path, clock_ptr);
        text.pop_back();  // the sink adds the last newline
        sink.Line(text);
      }
    } else if (o.order == DumpOrder::kFile) {
      damage = DumpFileOrder(*reader, o, clock_ptr, sink);
    } else {
      damage = DumpMerged(*reader, o, clock_ptr, sink);
    }
  }
  std::stable_sort(damage.begin(), damage.end(),
                   [](const Error& a, const Error& b) { return a.offset < b.offset; });
  for (const Error& e : damage) fmt::print(err, "xenbake-dump: {}: {}\n", o.path, e.Describe());
  return damage.empty() ? cli::kExitOk : cli::kExitPartial;
}

namespace {

constexpr std::string_view kDescription =
    "Decode a Xen trace file (xentrace format) to text, JSON lines or a summary.\n"
    "\n"
    "Reads FILE, a capture made by xentrace or by xenbaked: a sequence of per-CPU chunks, each a\n"
    "TRC_TRACE_CPU_CHANGE header (cpu, window bytes) followed by raw trace records.";

constexpr std::string_view kOutput = R"(OUTPUT
  Text (default): one line per record, deterministic (fit for golden files):
    off=<byte offset> cpu=<n> tsc=<tsc or -> [ns=<ns>] <EVENT> <field=value ...>
  EVENT is Xen's name without TRC_ (e.g. SCHED_SWITCH_INFPREV) or the hex event id. Known layouts
  (runstate changes, switches, wake/block/sleep/yield, domain add/remove, LOST_RECORDS,
  CPU_CHANGE, PV_HYPERCALL_V2) show named fields; others show their raw words as
  words=0x...,0x... . Records without a TSC show tsc=- . ns is TSC converted with the CPU
  frequency: ns=tsc*1e6/cpu_khz (time since the CPU's TSC was zero, roughly since boot).
  --format json: one JSON object per line with off, cpu, tsc, ns, event, name, class,
  fields, data.
  --summary: a table of counts; with --format json one JSON object with records (CPU_CHANGE included),
  cpu_change_records, wrap_records, lost_records (sum of the counts TRC_LOST_RECORDS reports),
  lost_records_events, runstate_changes, switch_infprev, switch_infnext, per_cpu (records per
  CPU, CPU_CHANGE excluded), tsc (first, last, span per CPU), per_class, per_event, anomalies.

ORDER
  merged (default): every CPU's records in one stream ordered by TSC; ties go to the lower CPU;
    a record without a TSC stays right after its predecessor on its CPU. CPU_CHANGE framing is
    not shown.
  file: records as stored, chunk by chunk, each chunk's CPU_CHANGE header shown as a record.

CPU FREQUENCY
  A xentrace file does not record it. --cpu-khz (xc_physinfo's cpu_khz, shown by `xl info` as
  cpu_mhz) wins; otherwise the sidecar FILE.meta written by xenbaked tools is read if present;
  otherwise no ns are printed.

DAMAGED INPUT
  A truncated or corrupt file is decoded up to the damage: everything before it is printed,
  then a message with the byte offset of the damage goes to stderr and the exit status is 3.
)";

constexpr std::string_view kExamples = R"(
EXAMPLES
  xenbake-dump trace.bin | less
  xenbake-dump --order file --cpu-khz 2596120 trace.bin
  xenbake-dump --summary --format json trace.bin | jq .lost_records
  xenbake-dump --format json -o trace.jsonl trace.bin)";

}  // namespace

int DumpMain(int argc, const char* const* argv, std::FILE* out, std::FILE* err) {
  CLI::App app{std::string(kDescription)};
  cli::Configure(app, "xenbake-dump");
  app.footer(std::string(kOutput) +
             cli::ExitStatusSection({.ok = "the whole file was decoded",
                                     .failure = "FILE cannot be opened or is not a trace file",
                                     .usage = "",
                                     .partial = "the file is truncated or corrupt: the output "
                                                "stops at the damage, stderr says where"}) +
             std::string(kExamples));
  DumpOptions o;
  app.add_option("FILE", o.path, "Trace file to read (xentrace format)")
      ->required()
      ->type_name("FILE");
  app.add_flag("--summary", o.summary, "Print counts instead of records");
  std::string format;
  cli::AddFormat(app, format, {"text", "json"},
                 "text, or json: one object per record, or one summary object");
  cli::AddOutput(app, o.output, "the records or the summary");
  std::string order = "merged";
  app.add_option("--order", order, "Record order: merged (by TSC, default) or file (as stored)")
      ->check(CLI::IsMember({"merged", "file"}))
      ->type_name("ORDER");
  app.add_option("--cpu-khz", o.cpu_khz,
                 "TSC frequency in kHz for nanoseconds (default: the FILE.meta "
                 "sidecar, if any)")
      ->check(CLI::Range(tracefmt::kMinCpuKhz, tracefmt::kMaxCpuKhz))
      ->type_name("KHZ");
  if (std::optional<int> status = cli::Parse(app, argc, argv, out, err)) return *status;
  o.json = format == "json";
  o.order = order == "file" ? DumpOrder::kFile : DumpOrder::kMerged;
  if (std::optional<int> status =
          cli::RefuseOutputOverInput("xenbake-dump", {o.output}, {o.path, o.path + ".meta"}, err))
    return *status;
  return cli::WithOutput(o.output, out, err, "xenbake-dump",
                         [&](std::FILE* file) { return RunDump(o, file, err); });
}

}  // namespace dom0tools
