#include "dom0tools/dump.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

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
    return kExitUsage;
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
  return damage.empty() ? kExitOk : kExitDamaged;
}

namespace {

constexpr std::string_view kDescription =
    "xenbake-dump - decode a Xen trace file (xentrace format) to text, JSON lines or a summary.\n"
    "\n"
    "Reads FILE, a capture made by xentrace or by xenbaked: a sequence of per-CPU chunks, each a\n"
    "TRC_TRACE_CPU_CHANGE header (cpu, window bytes) followed by raw trace records.";

constexpr std::string_view kFooter = R"(OUTPUT
  Text (default): one line per record, deterministic (fit for golden files):
    off=<byte offset> cpu=<n> tsc=<tsc or -> [ns=<ns>] <EVENT> <field=value ...>
  EVENT is Xen's name without TRC_ (e.g. SCHED_SWITCH_INFPREV) or the hex event id. Known layouts
  (runstate changes, switches, wake/block/sleep/yield, domain add/remove, LOST_RECORDS,
  CPU_CHANGE, PV_HYPERCALL_V2) show named fields; others show their raw words as
  words=0x...,0x... . Records without a TSC show tsc=- . ns is TSC converted with the CPU
  frequency: ns=tsc*1e6/cpu_khz (time since the CPU's TSC was zero, roughly since boot).
  --json: one JSON object per line with off, cpu, tsc, ns, event, name, class, fields, data.
  --summary: a table of counts; with --json one JSON object with records (CPU_CHANGE included),
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
  then a message with the byte offset of the damage goes to stderr and the exit status is 1.

EXIT STATUS
  0  the whole file was decoded
  1  the file is truncated or corrupt (output stops at the damage; stderr says where)
  2  bad arguments, or FILE cannot be opened

EXAMPLES
  xenbake-dump trace.bin | less
  xenbake-dump --order file --cpu-khz 2596120 trace.bin
  xenbake-dump --summary --json trace.bin | jq .lost_records)";

}  // namespace

int DumpMain(int argc, const char* const* argv, std::FILE* out, std::FILE* err) {
  CLI::App app{std::string(kDescription), "xenbake-dump"};
  app.set_version_flag("--version", "xenbake-dump " XENBAKED_VERSION);
  app.footer(std::string(kFooter));
  DumpOptions o;
  app.add_option("FILE", o.path, "Trace file to read (xentrace format)")->required();
  app.add_flag("--summary", o.summary, "Print counts instead of records");
  app.add_flag("--json", o.json, "JSON: one object per record, or one summary object");
  const std::map<std::string, DumpOrder> orders{{"merged", DumpOrder::kMerged},
                                                {"file", DumpOrder::kFile}};
  app.add_option("--order", o.order, "Record order: merged (by TSC, default) or file (as stored)")
      ->transform(CLI::CheckedTransformer(orders, CLI::ignore_case));
  app.add_option("--cpu-khz", o.cpu_khz,
                 "TSC frequency in kHz for nanoseconds (default: FILE.meta sidecar, if any)")
      ->check(CLI::Range(tracefmt::kMinCpuKhz, tracefmt::kMaxCpuKhz));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out_text;
    std::ostringstream err_text;
    const int status = app.exit(e, out_text, err_text);
    std::fputs(out_text.str().c_str(), out);
    std::fputs(err_text.str().c_str(), err);
    return status == 0 ? kExitOk : kExitUsage;
  }
  return RunDump(o, out, err);
}

}  // namespace dom0tools
