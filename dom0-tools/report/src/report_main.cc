#include "report/report_main.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "names/domain_name.h"
#include "report/report_format.h"
#include "report/report_model.h"
#include "tracefmt/trace_file.h"

namespace xenbake::report {
namespace {

constexpr const char* kDescription =
    "Per-domain CPU, wait and blocked time over a period, from xenbaked's accounting logs\n\n"
    "A table, CSV or JSON, and a plot over time as SVG.";

constexpr const char* kFooter = R"HELP(
WHAT IT COUNTS
  xenbaked logs one interval record per domain per window (1 s by default). The report
  sums those whose window ends inside [--from, --to], per domain incarnation (a reused
  domain id is a new row) and daemon run: each run counts incarnations afresh, so a
  domain seen by three runs has three rows, marked "run N" (CSV and JSON: "run", an
  index into "runs"). Percentages are of one physical CPU over the time the windows
  cover (gaps while no daemon ran are left out): CPU% running, WAIT% runnable but not
  running, BLK% blocked. "(destroyed)" marks a domain that ended in the period.
  UNK% and UNKNOWN s are time the trace cannot vouch for (lost records, before a vCPU's
  first record): each state's true time lies between its figure and its figure plus
  UNKNOWN; "(unknown time)" marks a domain that has some. Logs of daemons before format
  1.2 do not carry it and show 0.
  Domain names are shown sanitised, beside their ids.

RUNS AND LOSS
  A log can span several runs of the daemon (restarts, reboots). Each run's windows are
  counted apart and placed on the wall clock; with more than one run the table lists
  them and the time between them, which is not covered time. Loss is the daemon's own
  figure: "lost before the daemon started" (e.g. trace buffers full since boot) apart
  from "lost while it ran", as in its health report. Logs of daemons before format 1.1
  do not tell the two apart; the report then gives the loss inside the windows only.

  The daemon also logs a final record per domain incarnation: when the domain is
  destroyed, and for every live domain when the daemon stops. It holds the totals from
  the domain's first to last sighting, including the time after the last closed window.
  --format json gives it as "final" (reason destroyed or shutdown, running_ns,
  runnable_ns, blocked_ns, offline_ns, dispatches, wakes, blocks, lost_records, ...) for
  each domain whose final record ends in the period, null otherwise.

TIMES
  --from and --to take UTC times "2024-05-01T12:00:00Z", "2024-05-01 12:00:00",
  "2024-05-01", or Unix seconds "1714564800"; before 2554 (64-bit nanoseconds).

LOGS
  Give several logs (rotated ones: accounting.log.2 accounting.log.1 accounting.log) to
  report over all of them. A log that stops inside an unfinished record (the daemon was
  killed while writing) is reported up to there, with a note. A log damaged part-way is
  reported up to the damage, the byte offset is printed, and the exit status is 3.
  So is a record whose checksum is intact but whose figures cannot be true (a window that
  ends before it starts or is longer than a day, more time than the domain's vCPUs had):
  it is skipped with a warning naming its offset. Logs must be regular files of at most
  1 GiB (the daemon rotates at 64 MiB by default).

EXAMPLES
  xenbake-report /var/log/xenbaked/accounting.log
  xenbake-report --from "2024-05-01 12:00:00" --to "2024-05-01 13:00:00" --format csv \
      -o noon.csv /var/log/xenbaked/accounting.log
  xenbake-report --format json -o week.json --svg week.svg accounting.log.1 accounting.log
)HELP";

struct Options {
  std::vector<std::string> logs;
  std::optional<std::string> from;  // unset differs from "" (refused)
  std::optional<std::string> to;
  std::string format = "text";
  std::string output = "-";
  std::string svg;
  size_t max_domains = 8;
};

bool WriteFile(const std::string& path, const std::string& text) {
  if (path == "-") {
    return std::fwrite(text.data(), 1, text.size(), stdout) == text.size() &&
           std::fflush(stdout) == 0;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

std::optional<ReportPeriod> ParsePeriod(const Options& o) {
  ReportPeriod period;
  for (const auto& [text, field, flag] : {std::tuple{&o.from, &period.from_unix_ns, "--from"},
                                          std::tuple{&o.to, &period.to_unix_ns, "--to"}}) {
    if (!*text) continue;
    *field = ParseTimeArgument(**text);
    if (!*field) {
      fmt::print(stderr,
                 "xenbake-report: {} \"{}\": expected a UTC time before the year 2554 such as "
                 "2024-05-01T12:00:00Z, or Unix seconds\n",
                 flag, SanitizeDomainName(**text));
      return std::nullopt;
    }
  }
  if (period.from_unix_ns && period.to_unix_ns && *period.from_unix_ns > *period.to_unix_ns) {
    fmt::print(stderr, "xenbake-report: --from is after --to\n");
    return std::nullopt;
  }
  return period;
}

std::string Render(const Report& report, const std::string& format) {
  if (format == "csv") return FormatCsv(report);
  if (format == "json") return ReportJson(report).dump(2) + "\n";
  return FormatTable(report);
}

int Run(const Options& o) {
  const std::optional<ReportPeriod> period = ParsePeriod(o);
  if (!period) return cli::kExitUsage;
  if (std::optional<int> status =
          cli::RefuseOutputOverInput("xenbake-report", {o.output, o.svg}, o.logs, stderr))
    return *status;
  ReportBuilder builder(*period);
  for (const std::string& path : o.logs) {
    tracefmt::Result<std::vector<std::byte>> bytes =
        tracefmt::ReadRegularFile(path, tracefmt::kAcctMaxReadBytes, "an accounting log");
    tracefmt::Result<tracefmt::AcctLogReader> reader =
        bytes ? tracefmt::AcctLogReader::FromBytes(std::move(*bytes))
              : tracefmt::Result<tracefmt::AcctLogReader>(bytes.error());
    if (!reader) {
      fmt::print(stderr, "xenbake-report: {}: {}\n", path, reader.error().Describe());
      return cli::kExitFailure;
    }
    builder.AddLog(path, *reader);
  }
  const Report report = builder.Build();
  if (!WriteFile(o.output, Render(report, o.format))) {
    fmt::print(stderr, "xenbake-report: cannot write {}\n", o.output);
    return cli::kExitFailure;
  }
  if (!o.svg.empty() &&
      !WriteFile(o.svg, RenderSvgPlot(report, PlotOptions{o.max_domains, PlotOptions{}.max_points,
                                                          PlotOptions{}.width}))) {
    fmt::print(stderr, "xenbake-report: cannot write {}\n", o.svg);
    return cli::kExitFailure;
  }
  bool damaged = false;
  for (const LogProblem& p : report.problems) {
    if (p.truncated_tail) {
      fmt::print(stderr, "xenbake-report: note: {}: {}; reported up to there\n", p.path,
                 p.error.Describe());
    } else {
      fmt::print(stderr, "xenbake-report: {}: damaged: {}; the records before it are reported\n",
                 p.path, p.error.Describe());
      damaged = true;
    }
  }
  for (const RejectedRecord& r : report.rejected) {
    fmt::print(stderr, "xenbake-report: {}: record at byte {} skipped: {}\n", r.path,
               r.offset ? fmt::format("{}", *r.offset) : "?", r.reason);
    damaged = true;
  }
  if (report.log_dropped_records != 0) {
    fmt::print(stderr,
               "xenbake-report: the daemon dropped {} log records (disk full?): the log "
               "is incomplete\n",
               report.log_dropped_records);
  }
  return damaged ? cli::kExitPartial : cli::kExitOk;
}

}  // namespace

int ReportMain(int argc, char** argv) {
  CLI::App app{kDescription};
  cli::Configure(app, "xenbake-report");
  app.footer(std::string(kFooter) +
             cli::ExitStatusSection(
                 {.ok = "reported",
                  .failure = "a log cannot be read at all (missing, not a log, another version), "
                             "or an output cannot be written",
                  .usage = "a bad --from/--to",
                  .partial = "a log is damaged part-way or holds implausible records: "
                             "everything else was reported"}));
  Options o;
  app.add_option("LOG", o.logs, "Accounting logs, oldest first")->required()->type_name("LOG");
  app.add_option("--from", o.from, "Start of the period (UTC)")->type_name("TIME");
  app.add_option("--to", o.to, "End of the period (UTC)")->type_name("TIME");
  cli::AddFormat(app, o.format, {"text", "csv", "json"}, "text (a table), csv or json");
  cli::AddOutput(app, o.output, "the table, CSV or JSON");
  app.add_option("--svg", o.svg, "Also plot CPU / wait / blocked % over time into this SVG file")
      ->type_name("FILE");
  app.add_option("--max-domains", o.max_domains, "Domains drawn in the plot (the busiest), 1-10")
      ->check(CLI::Range(1, 10))
      ->type_name("N")
      ->default_str("8");
  if (std::optional<int> status = cli::Parse(app, argc, argv, stdout, stderr)) return *status;
  return Run(o);
}

}  // namespace xenbake::report
