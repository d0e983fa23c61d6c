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

// Sums the counters that add across windows: not the window's own times, and not slice minimum
// and maximum (zero in interval records anyway).
void AddCounters(const tracefmt::AcctDomainRecord& from, tracefmt::AcctDomainRecord& into) {
  using R = tracefmt::AcctDomainRecord;
  for (uint64_t R::*field : R::kCounters) {
    if (field == &R::window_start_ns || field == &R::window_end_ns ||
        field == &R::realtime_end_ns || field == &R::slice_min_ns || field == &R::slice_max_ns) {
      continue;
    }
    into.*field += from.*field;
  }
}

}  // namespace

double Percent(uint64_t part_ns, uint64_t whole_ns) {
  return whole_ns == 0 ? 0.0 : 100.0 * static_cast<double>(part_ns) / static_cast<double>(whole_ns);
}

void ReportBuilder::AddLog(const std::string& path, const tracefmt::AcctLogContents& contents) {
  if (report_.host.empty()) report_.host = SanitizeDomainName(contents.header.host);
  const size_t log_index = logs_++;
  for (const tracefmt::AcctRecord& record : contents.records) Add(record, log_index);
  if (contents.stop) {
    report_.problems.push_back(
        {.path = path,
         .error = *contents.stop,
         .truncated_tail = contents.stop->code == tracefmt::ErrorCode::kTruncated});
  }
}

bool ReportBuilder::InPeriod(uint64_t realtime_end_ns) const {
  return (!period_.from_unix_ns || realtime_end_ns >= *period_.from_unix_ns) &&
         (!period_.to_unix_ns || realtime_end_ns <= *period_.to_unix_ns);
}

size_t ReportBuilder::DomainIndex(const tracefmt::AcctDomainRecord& d) {
  const auto [it, inserted] = index_.try_emplace({d.domid, d.instance}, report_.domains.size());
  if (inserted) {
    DomainTotalsRow row;
    row.domid = d.domid;
    row.instance = d.instance;
    report_.domains.push_back(std::move(row));
  }
  DomainTotalsRow& row = report_.domains[it->second];
  if (!d.name.empty()) row.name = SanitizeDomainName(d.name);
  return it->second;
}

void ReportBuilder::Add(const tracefmt::AcctRecord& record, size_t log_index) {
  ++report_.records_read;
  if (const auto* d = std::get_if<tracefmt::AcctDomainRecord>(&record)) {
    if (d->is_final()) {
      // Totals since first seen: not differenced by period, but they say the domain ended (or
      // the daemon stopped) and what it came to.
      if (!InPeriod(d->realtime_end_ns)) return;
      DomainTotalsRow& row = report_.domains[DomainIndex(*d)];
      if (d->final_reason == tracefmt::AcctFinalReason::kDestroyed) row.destroyed = true;
      row.final_record = *d;
      return;
    }
    if (!InPeriod(d->realtime_end_ns) || d->window_end_ns <= d->window_start_ns) return;
    const uint64_t window_ns = d->window_end_ns - d->window_start_ns;
    NoteWindow(log_index, d->window_end_ns, window_ns);
    const size_t index = DomainIndex(*d);
    DomainTotalsRow& row = report_.domains[index];
    ++row.intervals;
    AddCounters(*d, row.totals);
    report_.series.push_back({.realtime_end_ns = d->realtime_end_ns,
                              .window_ns = window_ns,
                              .domain = index,
                              .running_ns = d->running_ns,
                              .runnable_ns = d->runnable_ns,
                              .blocked_ns = d->blocked_ns});
    const uint64_t start = d->realtime_end_ns > window_ns ? d->realtime_end_ns - window_ns : 0;
    if (report_.first_unix_ns == 0 || start < report_.first_unix_ns) report_.first_unix_ns = start;
    report_.last_unix_ns = std::max(report_.last_unix_ns, d->realtime_end_ns);
  } else if (const auto* h = std::get_if<tracefmt::AcctHostRecord>(&record)) {
    if (!InPeriod(h->realtime_end_ns)) return;
    if (h->window_end_ns > h->window_start_ns) {
      NoteWindow(log_index, h->window_end_ns, h->window_end_ns - h->window_start_ns);
    }
    report_.trace_records += h->records;
    report_.lost_records += h->lost_records;
    report_.log_dropped_records = std::max(report_.log_dropped_records, h->log_dropped_records);
  }
}

void ReportBuilder::NoteWindow(size_t log_index, uint64_t window_end_ns, uint64_t length_ns) {
  uint64_t& known = windows_[{log_index, window_end_ns}];
  known = std::max(known, length_ns);
}

Report ReportBuilder::Build() const {
  Report report = report_;
  report.windows = windows_.size();
  report.period_ns = 0;
  for (const auto& [key, ns] : windows_) report.period_ns += ns;
  // Rows by domain id then incarnation; the series keeps pointing at the right rows.
  std::vector<size_t> order(report.domains.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(report.domains[a].domid, report.domains[a].instance) <
           std::tie(report.domains[b].domid, report.domains[b].instance);
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
  // Unix seconds, possibly with a fraction.
  double seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc{} && end == text.data() + text.size() && seconds >= 0) {
    return static_cast<uint64_t>(std::llround(seconds * 1e9));
  }
  for (const char* format :
       {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"}) {
    tm parts{};
    const char* rest = strptime(text.c_str(), format, &parts);
    if (rest != nullptr && *rest == '\0') {
      const time_t t = timegm(&parts);
      if (t < 0) return std::nullopt;
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
