#include "report/report_model.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <variant>

#include "names/domain_name.h"

namespace xenbake::report {

namespace {

// No daemon closes a window longer than this: longer ones are damage (or forgery).
constexpr uint64_t kMaxWindowNs = 86'400'000'000'000;  // a day
// More vCPUs than any Xen guest can have.
constexpr uint32_t kMaxVcpus = 1u << 16;

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  uint64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

// Why a domain record's figures cannot be true, or nullopt. A window holds what the daemon
// *published* between its edges (xenbaked/docs/api.md), which may include time it learned late,
// back to the start of its run: the unknown time before a late-seen domain's first record, or a
// quiet CPU's lag. So none of its vCPU times (running, runnable, blocked, offline) can exceed
// vCPUs × the engine time since the run began (the window's end), but for rounding; a figure
// beyond that, a window that ends before it starts or one longer than a day is not the daemon's.
std::optional<std::string> ImplausibleDomainRecord(const tracefmt::AcctDomainRecord& d) {
  if (d.is_final() ? d.window_end_ns < d.window_start_ns : d.window_end_ns <= d.window_start_ns) {
    return fmt::format("domain {} window ends at {} ns, not after its start {} ns", d.domid,
                       d.window_end_ns, d.window_start_ns);
  }
  const uint64_t span = d.window_end_ns - d.window_start_ns;
  if (!d.is_final() && span > kMaxWindowNs) {
    return fmt::format("domain {} window of {} ns is longer than a day", d.domid, span);
  }
  if (d.vcpus > kMaxVcpus) return fmt::format("domain {} claims {} vCPUs", d.domid, d.vcpus);
  const uint64_t vcpus = std::max<uint32_t>(d.vcpus, 1);
  uint64_t capacity = 0;  // saturates rather than wraps
  if (__builtin_mul_overflow(vcpus, d.window_end_ns, &capacity)) capacity = UINT64_MAX;
  const uint64_t rounding = SaturatingAdd(vcpus * 1'000'000, capacity / 1000);  // 1 ms/vCPU, 0.1%
  const uint64_t limit = SaturatingAdd(capacity, rounding);
  for (const auto& [field, what] :
       {std::pair{&tracefmt::AcctDomainRecord::running_ns, "running"},
        std::pair{&tracefmt::AcctDomainRecord::runnable_ns, "runnable"},
        std::pair{&tracefmt::AcctDomainRecord::blocked_ns, "blocked"},
        std::pair{&tracefmt::AcctDomainRecord::offline_ns, "offline"}}) {
    if (d.*field > limit) {
      return fmt::format(
          "domain {} {} for {} ns by {} ns into its run with {} vCPUs: more than it had", d.domid,
          what, d.*field, d.window_end_ns, vcpus);
    }
  }
  return std::nullopt;
}

std::optional<std::string> ImplausibleHostWindow(const tracefmt::AcctHostRecord& h) {
  if (h.window_end_ns <= h.window_start_ns) {
    return fmt::format("host window ends at {} ns, not after its start {} ns", h.window_end_ns,
                       h.window_start_ns);
  }
  if (h.window_end_ns - h.window_start_ns > kMaxWindowNs) {
    return fmt::format("host window of {} ns is longer than a day",
                       h.window_end_ns - h.window_start_ns);
  }
  return std::nullopt;
}

// Sums the counters that add across windows: not the window's own times, and not slice minimum
// and maximum (zero in interval records anyway).
void AddCounters(const tracefmt::AcctDomainRecord& from, tracefmt::AcctDomainRecord& into) {
  using R = tracefmt::AcctDomainRecord;
  for (uint64_t R::*field : R::kCounters) {
    if (field == &R::window_start_ns || field == &R::window_end_ns ||
        field == &R::realtime_end_ns || field == &R::slice_min_ns || field == &R::slice_max_ns) {
      continue;
    }
    into.*field = SaturatingAdd(into.*field, from.*field);
  }
}

}  // namespace

double Percent(uint64_t part_ns, uint64_t whole_ns) {
  return whole_ns == 0 ? 0.0 : 100.0 * static_cast<double>(part_ns) / static_cast<double>(whole_ns);
}

void ReportBuilder::AddLog(const std::string& path, const tracefmt::AcctLogContents& contents) {
  if (report_.host.empty()) report_.host = SanitizeDomainName(contents.header.host);
  path_ = path;
  for (const tracefmt::AcctRecord& record : contents.records) Add(record);
  AddLogStop(path, contents.stop);
}

void ReportBuilder::AddLog(const std::string& path, tracefmt::AcctLogReader& reader) {
  if (report_.host.empty()) report_.host = SanitizeDomainName(reader.header().host);
  path_ = path;
  tracefmt::AcctRecord record;
  uint64_t offset = 0;
  while (reader.Next(record, &offset)) Add(record, offset);
  AddLogStop(path, reader.error());
}

void ReportBuilder::AddLogStop(const std::string& path,
                               const std::optional<tracefmt::Error>& stop) {
  if (!stop) return;
  report_.problems.push_back({.path = path,
                              .error = *stop,
                              .truncated_tail = stop->code == tracefmt::ErrorCode::kTruncated});
}

void ReportBuilder::Reject(std::optional<uint64_t> offset, std::string reason) {
  report_.rejected.push_back({.path = path_, .offset = offset, .reason = std::move(reason)});
}

bool ReportBuilder::InPeriod(uint64_t realtime_end_ns) const {
  return !BeforePeriod(realtime_end_ns) &&
         (!period_.to_unix_ns || realtime_end_ns <= *period_.to_unix_ns);
}

bool ReportBuilder::BeforePeriod(uint64_t realtime_end_ns) const {
  return period_.from_unix_ns && realtime_end_ns < *period_.from_unix_ns;
}

size_t ReportBuilder::DomainIndex(const tracefmt::AcctDomainRecord& d, size_t run) {
  const auto [it, inserted] =
      index_.try_emplace({run, d.domid, d.instance}, report_.domains.size());
  if (inserted) {
    DomainTotalsRow row;
    row.domid = d.domid;
    row.instance = d.instance;
    row.run = run;
    report_.domains.push_back(std::move(row));
  }
  DomainTotalsRow& row = report_.domains[it->second];
  if (!d.name.empty()) row.name = SanitizeDomainName(d.name);
  return it->second;
}

void ReportBuilder::AddRun(const tracefmt::AcctRunRecord& run) {
  const auto [it, inserted] = run_by_id_.try_emplace(run.run_id, runs_.size());
  if (inserted) {
    RunState& state = runs_.emplace_back();
    state.identified = true;
    state.summary.run_id = run.run_id;
    state.summary.start_realtime_ns = run.start_realtime_ns;
  }
  current_run_ = it->second;
  if (run.phase != tracefmt::AcctRunPhase::kEnd) return;
  RunState& state = runs_[it->second];
  NoteLoss(state, run.realtime_ns, {run.lost_records, run.lost_records_at_start});
  if (InPeriod(run.realtime_ns)) {
    state.summary.ended_cleanly = true;
    report_.log_dropped_records = std::max(report_.log_dropped_records, run.log_dropped_records);
  }
  current_run_.reset();  // what follows is another run's, even without its run record
}

size_t ReportBuilder::RunOfWindow(uint64_t window_end_ns) {
  // Engine time going back is a restart whose run record is missing (an older log, or one the
  // daemon dropped on a full disk): a run of its own all the same.
  if (!current_run_ || (runs_[*current_run_].has_window &&
                        window_end_ns < runs_[*current_run_].last_window_end_ns)) {
    runs_.emplace_back();
    current_run_ = runs_.size() - 1;
  }
  RunState& run = runs_[*current_run_];
  run.last_window_end_ns = std::max(run.last_window_end_ns, window_end_ns);
  run.has_window = true;
  return *current_run_;
}

size_t ReportBuilder::CurrentRun() {
  if (!current_run_) {
    runs_.emplace_back();
    current_run_ = runs_.size() - 1;
  }
  return *current_run_;
}

void ReportBuilder::NoteLoss(RunState& run, uint64_t realtime_ns, RunLoss loss) {
  const auto newest = [](RunLoss a, RunLoss b) {
    return RunLoss{std::max(a.lost, b.lost), std::max(a.at_start, b.at_start)};
  };
  if (BeforePeriod(realtime_ns)) {
    run.before_period = newest(run.before_period, loss);
  } else if (InPeriod(realtime_ns)) {
    run.in_period = newest(run.in_period.value_or(RunLoss{}), loss);
  }
}

void ReportBuilder::Add(const tracefmt::AcctRecord& record, std::optional<uint64_t> offset) {
  ++report_.records_read;
  if (const auto* run = std::get_if<tracefmt::AcctRunRecord>(&record)) {
    AddRun(*run);
  } else if (const auto* d = std::get_if<tracefmt::AcctDomainRecord>(&record)) {
    if (std::optional<std::string> why = ImplausibleDomainRecord(*d)) {
      Reject(offset, std::move(*why));
      return;
    }
    if (d->is_final()) {
      // Totals since first seen: not differenced by period, but they say the domain ended (or
      // the daemon stopped) and what it came to.
      if (!InPeriod(d->realtime_end_ns)) return;
      DomainTotalsRow& row = report_.domains[DomainIndex(*d, CurrentRun())];
      if (d->final_reason == tracefmt::AcctFinalReason::kDestroyed) row.destroyed = true;
      row.final_record = *d;
      return;
    }
    const size_t run = RunOfWindow(d->window_end_ns);
    if (!InPeriod(d->realtime_end_ns)) return;
    const uint64_t window_ns = d->window_end_ns - d->window_start_ns;
    NoteWindow(run, d->window_end_ns, window_ns, d->realtime_end_ns);
    const size_t index = DomainIndex(*d, run);
    DomainTotalsRow& row = report_.domains[index];
    ++row.intervals;
    AddCounters(*d, row.totals);
    report_.series.push_back({.realtime_end_ns = d->realtime_end_ns,
                              .window_ns = window_ns,
                              .domain = index,
                              .running_ns = d->running_ns,
                              .runnable_ns = d->runnable_ns,
                              .blocked_ns = d->blocked_ns,
                              .run = run});
  } else if (const auto* h = std::get_if<tracefmt::AcctHostRecord>(&record)) {
    if (std::optional<std::string> why = ImplausibleHostWindow(*h)) {
      Reject(offset, std::move(*why));
      return;
    }
    const size_t run = RunOfWindow(h->window_end_ns);
    NoteLoss(runs_[run], h->realtime_end_ns, {h->run_lost_records, h->run_lost_records_at_start});
    if (!InPeriod(h->realtime_end_ns)) return;
    NoteWindow(run, h->window_end_ns, h->window_end_ns - h->window_start_ns, h->realtime_end_ns);
    runs_[run].window_lost = SaturatingAdd(runs_[run].window_lost, h->lost_records);
    report_.trace_records = SaturatingAdd(report_.trace_records, h->records);
    report_.log_dropped_records = std::max(report_.log_dropped_records, h->log_dropped_records);
  }
}

void ReportBuilder::NoteWindow(size_t run, uint64_t window_end_ns, uint64_t length_ns,
                               uint64_t realtime_end_ns) {
  uint64_t& known = windows_[{run, window_end_ns}];
  known = std::max(known, length_ns);
  RunSummary& summary = runs_[run].summary;
  const uint64_t start = realtime_end_ns > length_ns ? realtime_end_ns - length_ns : 0;
  if (summary.first_unix_ns == 0 || start < summary.first_unix_ns) summary.first_unix_ns = start;
  summary.last_unix_ns = std::max(summary.last_unix_ns, realtime_end_ns);
}

Report ReportBuilder::Build() const {
  Report report = report_;
  report.windows = windows_.size();
  report.period_ns = 0;
  std::vector<RunSummary> runs;
  for (const RunState& r : runs_) runs.push_back(r.summary);
  for (const auto& [key, ns] : windows_) {
    report.period_ns = SaturatingAdd(report.period_ns, ns);
    runs[key.first].period_ns = SaturatingAdd(runs[key.first].period_ns, ns);
    ++runs[key.first].windows;
  }
  // Loss per run: the daemon's own cumulative figures where the log has them, differenced over
  // the period; else (older logs) what the selected windows add up to, with no part known to
  // have been lost before the start.
  for (const RunState& r : runs_) {
    if (r.identified) {
      if (!r.in_period) continue;
      const RunLoss& in = *r.in_period;
      const RunLoss& before = r.before_period;
      const uint64_t at_start = in.at_start - std::min(in.at_start, before.at_start);
      const uint64_t during_in = in.lost - std::min(in.lost, in.at_start);
      const uint64_t during_before = before.lost - std::min(before.lost, before.at_start);
      report.lost_records_at_start = SaturatingAdd(report.lost_records_at_start, at_start);
      report.lost_records_during_run = SaturatingAdd(
          report.lost_records_during_run, during_in - std::min(during_in, during_before));
    } else {
      report.lost_records_during_run = SaturatingAdd(report.lost_records_during_run, r.window_lost);
      if (r.window_lost != 0) report.lost_at_start_known = false;
    }
  }
  report.lost_records =
      SaturatingAdd(report.lost_records_at_start, report.lost_records_during_run);
  // Runs with a selected window (or a row), in log order; the series points and rows follow them.
  std::vector<bool> has_row(runs.size(), false);
  for (const DomainTotalsRow& d : report.domains) has_row[d.run] = true;
  std::vector<size_t> run_index(runs.size(), 0);
  for (size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].windows == 0 && !runs[i].ended_cleanly && !has_row[i]) continue;
    run_index[i] = report.runs.size();
    report.runs.push_back(runs[i]);
  }
  for (const RunSummary& r : report.runs) {
    if (r.windows == 0) continue;
    if (report.first_unix_ns == 0 || r.first_unix_ns < report.first_unix_ns)
      report.first_unix_ns = r.first_unix_ns;
    report.last_unix_ns = std::max(report.last_unix_ns, r.last_unix_ns);
  }
  for (SeriesPoint& p : report.series) p.run = run_index[p.run];
  for (DomainTotalsRow& d : report.domains) d.run = run_index[d.run];
  // Rows by domain id, run, then incarnation; the series keeps pointing at the right rows.
  std::vector<size_t> order(report.domains.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const DomainTotalsRow& x = report.domains[a];
    const DomainTotalsRow& y = report.domains[b];
    return std::tie(x.domid, x.run, x.instance) < std::tie(y.domid, y.run, y.instance);
  });
  std::vector<size_t> new_index(order.size());
  std::vector<DomainTotalsRow> sorted;
  for (size_t i = 0; i < order.size(); ++i) {
    new_index[order[i]] = i;
    sorted.push_back(report.domains[order[i]]);
  }
  report.domains = std::move(sorted);
  for (SeriesPoint& p : report.series) p.domain = new_index[p.domain];
  return report;
}

std::optional<uint64_t> ParseTimeArgument(const std::string& text) {
  // 2554-07-21 23:34:32 UTC: later times do not fit the log's 64-bit nanoseconds.
  constexpr int64_t kLastSecond = 18'446'744'072;
  // Unix seconds, possibly with a fraction: digits only (from_chars also takes "inf", "1e5").
  double seconds = 0;
  const bool plain_number =
      !text.empty() && text.find_first_not_of("0123456789.") == std::string::npos;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (plain_number && ec == std::errc{} && end == text.data() + text.size()) {
    if (!(seconds >= 0 && seconds <= static_cast<double>(kLastSecond))) return std::nullopt;
    return static_cast<uint64_t>(std::round(seconds * 1e9));
  }
  for (const char* format :
       {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"}) {
    tm parts{};
    const char* rest = strptime(text.c_str(), format, &parts);
    if (rest != nullptr && *rest == '\0') {
      const time_t t = timegm(&parts);
      if (t < 0 || t > kLastSecond) return std::nullopt;
      return static_cast<uint64_t>(t) * 1'000'000'000u;
    }
  }
  return std::nullopt;
}

std::string FormatUnixTime(uint64_t unix_ns) {
  const time_t t = static_cast<time_t>(unix_ns / 1'000'000'000u);
  tm parts{};
  gmtime_r(&t, &parts);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", parts.tm_year + 1900, parts.tm_mon + 1,
                     parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
}

}  // namespace xenbake::report
