#include "report/report_format.h"

#include <fmt/format.h>

#include "names/domain_name.h"

namespace xenbake::report {
namespace {

constexpr size_t kNameColumns = 18;

double Seconds(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

std::string CsvField(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string Padded(const std::string& name) {
  const std::string fitted = FitToWidth(name, kNameColumns);
  return fitted + std::string(kNameColumns - DisplayWidth(fitted), ' ');
}

std::string ProblemLine(const LogProblem& p) {
  return p.truncated_tail
             ? fmt::format(
                   "note: {}: ends inside an unfinished record ({}); everything before "
                   "it is reported",
                   p.path, p.error.Describe())
             : fmt::format("error: {}: damaged: {}; the records before it are reported", p.path,
                           p.error.Describe());
}

// One line per daemon run when there were several: when each ran, and the gap before it, so
// time when no daemon ran is never read as accounted time.
std::string RunLines(const Report& r) {
  if (r.runs.size() < 2) return "";
  std::string out;
  uint64_t previous_end = 0;
  for (size_t i = 0; i < r.runs.size(); ++i) {
    const RunSummary& run = r.runs[i];
    if (run.windows == 0) continue;
    std::string gap;
    if (previous_end != 0) {
      gap = run.first_unix_ns > previous_end
                ? fmt::format("  after {:.0f} s without a daemon",
                              Seconds(run.first_unix_ns - previous_end))
                : "  overlapping the run before";
    }
    out += fmt::format("  run {}: {} .. {} UTC  {:.0f} s in {} windows{}{}\n", i + 1,
                       FormatUnixTime(run.first_unix_ns), FormatUnixTime(run.last_unix_ns),
                       Seconds(run.period_ns), run.windows,
                       run.ended_cleanly ? "" : "  (no clean end)", gap);
    previous_end = run.last_unix_ns;
  }
  return out;
}

std::string LossLine(const Report& r) {
  if (!r.lost_at_start_known) {
    return fmt::format("lost by the hypervisor {} (this log does not tell loss before start apart)",
                       r.lost_records);
  }
  return fmt::format("lost before the daemon started {}  lost while it ran {}",
                     r.lost_records_at_start, r.lost_records_during_run);
}

}  // namespace

std::string FormatTable(const Report& r) {
  std::string out;
  out +=
      fmt::format("host {}  period {} .. {} UTC  covered {:.0f} s in {} windows{}\n",
                  r.host.empty() ? "?" : r.host, r.windows ? FormatUnixTime(r.first_unix_ns) : "-",
                  r.windows ? FormatUnixTime(r.last_unix_ns) : "-", Seconds(r.period_ns), r.windows,
                  r.runs.size() > 1 ? fmt::format(" over {} daemon runs", r.runs.size()) : "");
  out += RunLines(r);
  out += fmt::format(
      "trace records {}  {}{}\n", r.trace_records, LossLine(r),
      r.log_dropped_records
          ? fmt::format("  LOG INCOMPLETE: {} records dropped by the daemon", r.log_dropped_records)
          : "");
  out +=
      fmt::format("{:>5} {:<{}} {:>7} {:>7} {:>7} {:>7} {:>11} {:>11} {:>11} {:>11} {:>10} {:>9} "
                  "{:>9} {:>8}\n",
                  "ID", "NAME", kNameColumns, "CPU%", "WAIT%", "BLK%", "UNK%", "RUNNING s",
                  "WAITING s", "BLOCKED s", "UNKNOWN s", "DISPATCHES", "WAKES", "IO", "LOST");
  bool any_unknown = false;
  for (const DomainTotalsRow& d : r.domains) {
    any_unknown = any_unknown || d.totals.unknown_ns != 0;
    out += fmt::format(
        "{:>5} {} {:>7.2f} {:>7.2f} {:>7.2f} {:>7.2f} {:>11.3f} {:>11.3f} {:>11.3f} {:>11.3f} "
        "{:>10} {:>9} {:>9} {:>8}{}{}{}\n",
        d.domid, Padded(d.name), Percent(d.totals.running_ns, r.period_ns),
        Percent(d.totals.runnable_ns, r.period_ns), Percent(d.totals.blocked_ns, r.period_ns),
        Percent(d.totals.unknown_ns, r.period_ns), Seconds(d.totals.running_ns),
        Seconds(d.totals.runnable_ns), Seconds(d.totals.blocked_ns), Seconds(d.totals.unknown_ns),
        d.totals.dispatches, d.totals.wakes, d.totals.io_records, d.totals.lost_records,
        d.totals.unknown_ns ? "  (unknown time)" : "", d.destroyed ? "  (destroyed)" : "",
        r.runs.size() > 1 ? fmt::format("  run {}", d.run + 1) : "");
  }
  if (any_unknown) {
    out +=
        "unknown time: the trace cannot vouch for it (lost records, before a vCPU's first record); "
        "each state's true time lies between its figure and its figure plus UNKNOWN\n";
  }
  for (const LogProblem& p : r.problems) out += ProblemLine(p) + "\n";
  return out;
}

std::string FormatCsv(const Report& r) {
  std::string out =
      "domid,instance,name,destroyed,intervals,period_s,running_s,runnable_s,blocked_s,"
      "offline_s,cpu_pct,wait_pct,blocked_pct,dispatches,run_slices,mean_slice_s,wakes,blocks,"
      "hypercalls,io_records,lost_records,unknown_s,unknown_pct,run\n";
  for (const DomainTotalsRow& d : r.domains) {
    out += fmt::format(
        "{},{},{},{},{},{:.9f},{:.9f},{:.9f},{:.9f},{:.9f},{:.4f},{:.4f},{:.4f},{},{},{:.9f},{},{},"
        "{},{},{},{:.9f},{:.4f},{}\n",
        d.domid, d.instance, CsvField(d.name), d.destroyed ? 1 : 0, d.intervals,
        Seconds(r.period_ns), Seconds(d.totals.running_ns), Seconds(d.totals.runnable_ns),
        Seconds(d.totals.blocked_ns), Seconds(d.totals.offline_ns),
        Percent(d.totals.running_ns, r.period_ns), Percent(d.totals.runnable_ns, r.period_ns),
        Percent(d.totals.blocked_ns, r.period_ns), d.totals.dispatches, d.totals.run_slices,
        d.totals.run_slices
            ? Seconds(d.totals.slice_sum_ns) / static_cast<double>(d.totals.run_slices)
            : 0.0,
        d.totals.wakes, d.totals.blocks, d.totals.hypercalls, d.totals.io_records,
        d.totals.lost_records, Seconds(d.totals.unknown_ns),
        Percent(d.totals.unknown_ns, r.period_ns), d.run);
  }
  return out;
}

namespace {

// A final record's totals, or null when the period holds none for the domain.
nlohmann::json FinalJson(const std::optional<tracefmt::AcctDomainRecord>& f) {
  if (!f) return nullptr;
  const bool destroyed = f->final_reason == tracefmt::AcctFinalReason::kDestroyed;
  return {{"reason", destroyed ? "destroyed" : "shutdown"},
          {"first_seen_ns", f->window_start_ns},
          {"last_seen_ns", f->window_end_ns},
          {"realtime_end_ns", f->realtime_end_ns},
          {"vcpus", f->vcpus},
          {"running_ns", f->running_ns},
          {"runnable_ns", f->runnable_ns},
          {"blocked_ns", f->blocked_ns},
          {"offline_ns", f->offline_ns},
          {"unknown_ns", f->unknown_ns},
          {"dispatches", f->dispatches},
          {"run_slices", f->run_slices},
          {"slice_min_ns", f->slice_min_ns},
          {"slice_max_ns", f->slice_max_ns},
          {"slice_sum_ns", f->slice_sum_ns},
          {"wakes", f->wakes},
          {"blocks", f->blocks},
          {"hypercalls", f->hypercalls},
          {"io_records", f->io_records},
          {"lost_records", f->lost_records}};
}

}  // namespace

nlohmann::json ReportJson(const Report& r) {
  nlohmann::json domains = nlohmann::json::array();
  for (const DomainTotalsRow& d : r.domains) {
    domains.push_back({{"domid", d.domid},
                       {"instance", d.instance},
                       {"run", d.run},
                       {"name", d.name},
                       {"destroyed", d.destroyed},
                       {"intervals", d.intervals},
                       {"running_ns", d.totals.running_ns},
                       {"runnable_ns", d.totals.runnable_ns},
                       {"blocked_ns", d.totals.blocked_ns},
                       {"offline_ns", d.totals.offline_ns},
                       {"unknown_ns", d.totals.unknown_ns},
                       {"cpu_pct", Percent(d.totals.running_ns, r.period_ns)},
                       {"wait_pct", Percent(d.totals.runnable_ns, r.period_ns)},
                       {"blocked_pct", Percent(d.totals.blocked_ns, r.period_ns)},
                       {"unknown_pct", Percent(d.totals.unknown_ns, r.period_ns)},
                       {"dispatches", d.totals.dispatches},
                       {"run_slices", d.totals.run_slices},
                       {"slice_sum_ns", d.totals.slice_sum_ns},
                       {"wakes", d.totals.wakes},
                       {"blocks", d.totals.blocks},
                       {"hypercalls", d.totals.hypercalls},
                       {"io_records", d.totals.io_records},
                       {"lost_records", d.totals.lost_records},
                       {"final", FinalJson(d.final_record)}});
  }
  nlohmann::json problems = nlohmann::json::array();
  for (const LogProblem& p : r.problems) {
    problems.push_back({{"path", p.path},
                        {"offset", p.error.offset},
                        {"truncated_tail", p.truncated_tail},
                        {"message", p.error.Describe()}});
  }
  nlohmann::json rejected = nlohmann::json::array();
  for (const RejectedRecord& x : r.rejected) {
    rejected.push_back({{"path", x.path},
                        {"offset", x.offset ? nlohmann::json(*x.offset) : nlohmann::json()},
                        {"reason", x.reason}});
  }
  nlohmann::json runs = nlohmann::json::array();
  for (const RunSummary& run : r.runs) {
    runs.push_back({{"run_id", run.run_id},
                    {"start_realtime_ns", run.start_realtime_ns},
                    {"first_unix_ns", run.first_unix_ns},
                    {"last_unix_ns", run.last_unix_ns},
                    {"windows", run.windows},
                    {"period_ns", run.period_ns},
                    {"ended_cleanly", run.ended_cleanly}});
  }
  return {{"host", r.host},
          {"period_ns", r.period_ns},
          {"first_unix_ns", r.first_unix_ns},
          {"last_unix_ns", r.last_unix_ns},
          {"windows", r.windows},
          {"trace_records", r.trace_records},
          {"lost_records", r.lost_records},
          {"lost_records_at_start", r.lost_records_at_start},
          {"lost_records_during_run", r.lost_records_during_run},
          {"lost_at_start_known", r.lost_at_start_known},
          {"runs", runs},
          {"log_dropped_records", r.log_dropped_records},
          {"domains", domains},
          {"problems", problems},
          {"rejected", rejected}};
}

}  // namespace xenbake::report
