// report/report_model.h — per-domain totals over a period, from accounting logs.
//
// The daemon's log holds one interval record per domain per window (its shortest, 1 s by
// default). A report sums the interval records whose window ends inside the period, per domain
// incarnation, and keeps each window's figures for the plot. Percentages are of one physical CPU
// over the time the selected windows cover (gaps when no daemon ran do not count), as in
// xenbake-top: two busy vCPUs make 200%.
//
// Windows are keyed by daemon run: engine time starts again at 0 each time the daemon starts,
// so one run's windows are told from the next by the run records (format 1.1), or, in older
// logs, by engine time going backwards. Loss is the daemon's own figure per run (host records
// and run-end records carry it since 1.1, loss before start apart), older logs give the sum of
// the windows' loss.
//
// A domain's incarnation (instance) is a counter of the daemon run that logged it, so rows are
// keyed by run too: one row per domain incarnation per run. Records whose figures cannot be true
// (a window ending before it starts or longer than a day, more time than the domain's vCPUs had)
// are skipped and listed in Report::rejected, and sums saturate rather than wrap.
//
//   ReportBuilder builder({.from_unix_ns = from, .to_unix_ns = to});
//   builder.AddLog(path, *tracefmt::AcctLogReader::FromBytes(bytes));
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
  uint64_t instance = 0;  // counted afresh in every daemon run
  size_t run = 0;         // index into Report::runs: the run that logged this incarnation
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
  size_t run = 0;  // index into Report::runs: lines break between runs
};

// One daemon run, as far as the selected windows show it.
struct RunSummary {
  uint64_t run_id = 0;             // 0 for a run told apart only by its engine time (older logs)
  uint64_t start_realtime_ns = 0;  // when the daemon started (0 when unknown)
  uint64_t first_unix_ns = 0;      // start of its first selected window
  uint64_t last_unix_ns = 0;       // end of its last
  uint64_t windows = 0;
  uint64_t period_ns = 0;
  bool ended_cleanly = false;  // its run-end record is in the period
};

// Why a log was read only in part.
struct LogProblem {
  std::string path;
  tracefmt::Error error;
  bool truncated_tail = false;  // the writer was killed mid-record: expected after a crash
};

// A record with intact checksums whose figures cannot be true: skipped.
struct RejectedRecord {
  std::string path;
  std::optional<uint64_t> offset;  // byte offset of its frame, when the reader gave it
  std::string reason;
};

struct Report {
  std::string host;
  uint64_t period_ns = 0;      // time covered by the selected windows
  uint64_t first_unix_ns = 0;  // start of the first selected window (wall clock)
  uint64_t last_unix_ns = 0;   // end of the last
  uint64_t windows = 0;        // distinct windows selected
  uint64_t trace_records = 0;  // from host records
  // Reported lost by the hypervisor: all of it, the part lost before each daemon run started
  // (buffers full since boot, or left from before) and the part lost while it ran.
  uint64_t lost_records = 0;
  uint64_t lost_records_at_start = 0;
  uint64_t lost_records_during_run = 0;
  bool lost_at_start_known = true;       // false when an older log could not tell it apart
  std::vector<RunSummary> runs;          // in the order they appear
  uint64_t log_dropped_records = 0;      // the log's own losses (nonzero: the log is incomplete)
  std::vector<DomainTotalsRow> domains;  // by domid, then instance
  std::vector<SeriesPoint> series;       // in log order
  std::vector<LogProblem> problems;
  std::vector<RejectedRecord> rejected;
  uint64_t records_read = 0;
};

double Percent(uint64_t part_ns, uint64_t whole_ns);

class ReportBuilder {
 public:
  explicit ReportBuilder(ReportPeriod period) : period_(period) {}

  // Adds one log's intact records; `contents.stop`, if set, becomes a LogProblem.
  void AddLog(const std::string& path, const tracefmt::AcctLogContents& contents);
  // The same, record by record, so that a rejected record is named by its byte offset.
  void AddLog(const std::string& path, tracefmt::AcctLogReader& reader);
  void Add(const tracefmt::AcctRecord& record, std::optional<uint64_t> offset = std::nullopt);
  Report Build() const;

 private:
  // The daemon's cumulative loss figures of one run, as of one record.
  struct RunLoss {
    uint64_t lost = 0;
    uint64_t at_start = 0;
  };
  struct RunState {
    RunSummary summary;
    bool identified = false;          // known by a run record (format 1.1), with the daemon's loss
    uint64_t last_window_end_ns = 0;  // engine time: going back means another run began
    bool has_window = false;
    // Cumulative figures: the newest before the period and the newest inside it; their
    // difference is the run's loss in the period.
    RunLoss before_period;
    std::optional<RunLoss> in_period;
    uint64_t window_lost = 0;  // loss summed over the selected windows (older logs)
  };

  bool InPeriod(uint64_t realtime_end_ns) const;
  bool BeforePeriod(uint64_t realtime_end_ns) const;
  size_t DomainIndex(const tracefmt::AcctDomainRecord& d, size_t run);
  // The run a final record belongs to: the current one, else a new one.
  size_t CurrentRun();
  void Reject(std::optional<uint64_t> offset, std::string reason);
  void AddLogStop(const std::string& path, const std::optional<tracefmt::Error>& stop);
  void AddRun(const tracefmt::AcctRunRecord& run);
  // The run a window record ending at `window_end_ns` (engine time) belongs to.
  size_t RunOfWindow(uint64_t window_end_ns);
  void NoteLoss(RunState& run, uint64_t realtime_ns, RunLoss loss);
  // Records a window by its end. A domain first seen inside a window has a record starting where
  // it appeared, so a window's length is the longest record (or the host record) ending there.
  void NoteWindow(size_t run, uint64_t window_end_ns, uint64_t length_ns, uint64_t realtime_end_ns);

  ReportPeriod period_;
  Report report_;
  std::map<std::tuple<size_t, uint32_t, uint64_t>, size_t> index_;  // (run, domid, instance) -> row
  std::string path_;  // of the log being added, for RejectedRecord
  std::vector<RunState> runs_;
  std::map<uint64_t, size_t> run_by_id_;
  std::optional<size_t> current_run_;  // the run the next window records belong to
  // Distinct windows selected, by (run, engine end) -> length: the period is their sum.
  std::map<std::pair<size_t, uint64_t>, uint64_t> windows_;
};

// "2024-05-01T12:00:00Z", "2024-05-01 12:00:00" (UTC), "2024-05-01", or Unix seconds
// ("1714564800", "1714564800.5"). nullopt when it is none of these, or does not fit 64-bit
// nanoseconds (2554-07-21 and later).
std::optional<uint64_t> ParseTimeArgument(const std::string& text);
// "2024-05-01 12:00:00" (UTC).
std::string FormatUnixTime(uint64_t unix_ns);

}  // namespace xenbake::report
