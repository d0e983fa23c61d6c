// report/report_model.h — per-domain totals over a period, from accounting logs.
//
// The daemon's log holds one interval record per domain per window (its shortest, 1 s by
// default). A report sums the interval records whose window ends inside the period, per domain
// incarnation, and keeps each window's figures for the plot. Percentages are of one physical CPU
// over the time the selected windows cover (gaps when no daemon ran do not count), as in
// xenbake-top: two busy vCPUs make 200%.
//
//   ReportBuilder builder({.from_unix_ns = from, .to_unix_ns = to});
//   builder.AddLog(path, *tracefmt::ReadAcctLogFile(path));
//   Report report = builder.Build();
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "tracefmt/acctlog.h"

namespace xenbake::report {

struct ReportPeriod {
  std::optional<uint64_t> from_unix_ns;  // windows ending at or after this
  std::optional<uint64_t> to_unix_ns;    // windows ending at or before this
};

struct DomainTotalsRow {
  uint32_t domid = 0;
  uint64_t instance = 0;
  std::string name;  // sanitised
  bool destroyed = false;
  uint64_t intervals = 0;
  // The additive counters summed over the selected intervals (window times and slice min/max,
  // which do not add, stay zero).
  tracefmt::AcctDomainRecord totals;
  // The daemon's final record of this incarnation, when the period holds one: its totals from
  // first to last sighting (destroyed, or alive when the daemon shut down). Unlike `totals` it
  // also covers the time after the last closed window.
  std::optional<tracefmt::AcctDomainRecord> final_record;
};

// One domain over one window, for the plot.
struct SeriesPoint {
  uint64_t realtime_end_ns = 0;
  uint64_t window_ns = 0;
  size_t domain = 0;  // index into Report::domains
  uint64_t running_ns = 0;
  uint64_t runnable_ns = 0;
  uint64_t blocked_ns = 0;
};

// Why a log was read only in part.
struct LogProblem {
  std::string path;
  tracefmt::Error error;
  bool truncated_tail = false;  // the writer was killed mid-record: expected after a crash
};

struct Report {
  std::string host;
  uint64_t period_ns = 0;                // time covered by the selected windows
  uint64_t first_unix_ns = 0;            // start of the first selected window (wall clock)
  uint64_t last_unix_ns = 0;             // end of the last
  uint64_t windows = 0;                  // distinct windows selected
  uint64_t trace_records = 0;            // from host records
  uint64_t lost_records = 0;             // reported lost by the hypervisor
  uint64_t log_dropped_records = 0;      // the log's own losses (nonzero: the log is incomplete)
  std::vector<DomainTotalsRow> domains;  // by domid, then instance
  std::vector<SeriesPoint> series;       // in log order
  std::vector<LogProblem> problems;
  uint64_t records_read = 0;
};

double Percent(uint64_t part_ns, uint64_t whole_ns);

class ReportBuilder {
 public:
  explicit ReportBuilder(ReportPeriod period) : period_(period) {}

  // Adds one log's intact records; `contents.stop`, if set, becomes a LogProblem.
  void AddLog(const std::string& path, const tracefmt::AcctLogContents& contents);
  void Add(const tracefmt::AcctRecord& record, size_t log_index);
  Report Build() const;

 private:
  bool InPeriod(uint64_t realtime_end_ns) const;
  size_t DomainIndex(const tracefmt::AcctDomainRecord& d);

  ReportPeriod period_;
  Report report_;
  std::map<std::pair<uint32_t, uint64_t>, size_t> index_;  // (domid, instance) -> row
  // Records a window by its end. A domain first seen inside a window has a record starting where
  // it appeared, so a window's length is the longest record (or the host record) ending there.
  void NoteWindow(size_t log_index, uint64_t window_end_ns, uint64_t length_ns);

  // Distinct windows selected, by (log, engine end) -> length: the period is their sum.
  std::map<std::pair<size_t, uint64_t>, uint64_t> windows_;
  size_t logs_ = 0;
};

// "2024-05-01T12:00:00Z", "2024-05-01 12:00:00" (UTC), "2024-05-01", or Unix seconds
// ("1714564800", "1714564800.5"). nullopt when it is none of these.
std::optional<uint64_t> ParseTimeArgument(const std::string& text);
// "2024-05-01 12:00:00" (UTC).
std::string FormatUnixTime(uint64_t unix_ns);

}  // namespace xenbake::report
