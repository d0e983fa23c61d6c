// libFuzzer target over what reads an accounting log a hostile or damaged file may hold: the
// record decoder of tracefmt/acctlog.h and xenbake-report's model and renderers (runs, windows,
// loss, the SVG plot). Frames carry CRCs a fuzzer would rarely get right, so most inputs are read
// as a list of (tag, payload) records framed here with correct CRCs; the payloads then reach the
// real decoder as a writer's bytes would. It checks invariants, not just the absence of crashes.
//
// Input: byte 0 even: [u8 tag][u8 len_lo][u8 len_hi][len bytes payload]...; odd: the rest is a
// whole file (header included), as read from disk.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "report/report_format.h"
#include "report/report_model.h"
#include "tracefmt/acctlog.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

std::vector<std::byte> FramedLog(std::span<const std::byte> in) {
  std::vector<std::byte> log =
      tracefmt::EncodeAcctHeader({.created_realtime_ns = 1, .cpu_khz = 2'000'000, .host = "h"});
  size_t at = 0;
  while (in.size() - at >= 3) {
    // Tags 1..6 mostly: the known ones and one unknown.
    const auto tag = static_cast<uint16_t>(std::to_integer<uint8_t>(in[at]) % 7);
    const size_t len = std::to_integer<size_t>(in[at + 1]) | std::to_integer<size_t>(in[at + 2])
                                                                 << 8;
    at += 3;
    const size_t take = std::min(len, in.size() - at);
    tracefmt::AcctUnknownRecord raw{.tag = tag,
                                    .payload = {in.begin() + at, in.begin() + at + take}};
    at += take;
    tracefmt::AppendAcctRecord(raw, log);
  }
  return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::span<const std::byte> in = std::as_bytes(std::span(data + 1, size - 1));
  const std::vector<std::byte> bytes =
      (data[0] & 1) != 0 ? std::vector<std::byte>(in.begin(), in.end()) : FramedLog(in);
  tracefmt::Result<tracefmt::AcctLogContents> contents = tracefmt::ReadAcctLog(bytes);
  if (!contents) return 0;
  Check(contents->valid_bytes <= bytes.size());
  if (contents->stop) Check(contents->stop->offset <= bytes.size());

  xenbake::report::ReportBuilder builder({});
  builder.AddLog("fuzz.log", *contents);
  const xenbake::report::Report report = builder.Build();
  uint64_t run_windows = 0;
  uint64_t run_period = 0;
  for (const xenbake::report::RunSummary& run : report.runs) {
    run_windows += run.windows;
    run_period += run.period_ns;
  }
  Check(run_windows == report.windows);
  Check(run_period == report.period_ns);
  Check(report.lost_records == report.lost_records_at_start + report.lost_records_during_run);
  for (const xenbake::report::SeriesPoint& p : report.series) {
    Check(p.domain < report.domains.size());
    Check(p.run < report.runs.size());
  }
  (void)xenbake::report::FormatTable(report);
  (void)xenbake::report::FormatCsv(report);
  (void)xenbake::report::ReportJson(report).dump();
  (void)xenbake::report::RenderSvgPlot(report);
  return 0;
}
