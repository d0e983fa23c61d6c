// tracefmt/acctlog.h — the accounting log format: what xenbaked writes each interval and what
// offline tools (xenbake-report) read back, without the daemon.
//
// A log is a file header followed by framed, tagged records. All integers little-endian.
//
//   File header (written once, in one write(2), when the file is created):
//     0   8  magic "XBAKACCT"
//     8   2  version major (kAcctLogMajor; a reader rejects any other major)
//     10  2  version minor (a newer minor only appends counters; older readers ignore them)
//     12  4  header_bytes: the whole header, CRC included
//     16  8  created_realtime_ns (CLOCK_REALTIME)
//     24  8  cpu_khz (TSC rate the daemon used)
//     32  2  host_len, then host_len bytes of host name
//     ..  4  CRC32C of every header byte before it
//
//   Record frame:
//     0   2  tag (AcctTag)
//     2   2  flags (0; reserved)
//     4   4  payload_bytes (<= kAcctMaxPayloadBytes)
//     8   4  CRC32C of bytes 0..7 — a damaged length is corruption, never mistaken for a short tail
//     12  n  payload
//     12+n 4 CRC32C of the payload
//
// Payloads (docs: xenbaked/docs/acctlog.md) carry a counter count followed by that many u64
// counters in a documented order, so fields can be added without a major version bump. Unknown
// tags are delivered as AcctUnknownRecord and skipped.
//
// Reading stops at the first record that is not intact. A file that simply ends inside a record
// (a writer killed mid-write, or a zero-filled tail after a crash) ends with a kTruncated error;
// any other damage is kCorrupt. Both carry the byte offset, and every record before it is kept.
//
//   auto log = tracefmt::AcctLogReader::Open("/var/log/xenbaked/accounting.log");
//   if (!log) die(log.error().Describe());
//   tracefmt::AcctRecord rec;
//   while (log->Next(rec)) {
//     if (auto* d = std::get_if<tracefmt::AcctDomainRecord>(&rec)) use(*d);
//   }
//   if (log->error() && !log->truncated_tail()) warn(log->error()->Describe());
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "tracefmt/result.h"

namespace tracefmt {

inline constexpr std::array<char, 8> kAcctLogMagic = {'X', 'B', 'A', 'K', 'A', 'C', 'C', 'T'};
inline constexpr uint16_t kAcctLogMajor = 1;
// 1.1: run records, the daemon's loss in host records; 1.2: unknown_ns in domain records;
// 1.3: the reconciliation with the hypervisor's cpu_time in domain and host records
inline constexpr uint16_t kAcctLogMinor = 3;
inline constexpr uint32_t kAcctFrameHeaderBytes = 12;
inline constexpr uint32_t kAcctFrameTrailerBytes = 4;
// A record larger than this is damage, not data (the largest real one is a few hundred bytes).
inline constexpr uint32_t kAcctMaxPayloadBytes = 64u << 10;
inline constexpr size_t kAcctMaxHostBytes = 255;
inline constexpr size_t kAcctMaxNameBytes = 255;

enum class AcctTag : uint16_t {
  kDomainInterval = 1,  // one domain over one window
  kDomainFinal = 2,     // a domain's totals since it was first seen, once, at its end
  kCpuInterval = 3,     // one physical CPU over one window
  kHostInterval = 4,    // the whole host over one window, and the log's own losses
  kRun = 5,             // a daemon run: its start, its continuation in a new file, its clean end
};

struct AcctLogHeader {
  uint16_t major = kAcctLogMajor;
  uint16_t minor = kAcctLogMinor;
  uint64_t created_realtime_ns = 0;
  uint64_t cpu_khz = 0;
  std::string host;
};

enum class AcctFinalReason : uint32_t {
  kNotFinal = 0,   // an interval record
  kDestroyed = 1,  // the hypervisor destroyed the domain (or reused its id)
  kShutdown = 2,   // the daemon stopped cleanly while the domain was alive
};

// Times are engine time (ns since the daemon's accounting began, restarting at 0 in each run)
// unless named realtime.
struct AcctDomainRecord {
  uint32_t domid = 0;
  uint32_t vcpus = 0;
  AcctFinalReason final_reason = AcctFinalReason::kNotFinal;
  uint64_t instance = 0;  // incarnation of a reused domain id
  std::string name;
  // Counters, in on-disk order (kCounters below). Interval records hold what happened inside
  // [window_start_ns, window_end_ns); final records hold totals since the domain was first seen.
  uint64_t window_start_ns = 0;
  uint64_t window_end_ns = 0;
  uint64_t realtime_end_ns = 0;  // CLOCK_REALTIME at window_end_ns
  uint64_t running_ns = 0;
  uint64_t runnable_ns = 0;
  uint64_t blocked_ns = 0;
  uint64_t offline_ns = 0;
  uint64_t dispatches = 0;
  uint64_t run_slices = 0;
  uint64_t slice_min_ns = 0;  // final records only: a minimum cannot be differenced (0 otherwise)
  uint64_t slice_max_ns = 0;  // likewise
  uint64_t slice_sum_ns = 0;
  uint64_t allocated_ns = 0;
  uint64_t allocations = 0;
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  uint64_t hypercalls = 0;
  uint64_t io_records = 0;
  uint64_t lost_records = 0;
  // Since 1.2: time the trace cannot vouch for, summed over the vCPUs (each state's true time lies
  // within [its figure, its figure + unknown_ns]). Records of older logs read 0 here.
  uint64_t unknown_ns = 0;
  // Since 1.3: the trace's running time and the hypervisor's cpu_time over the reconciliation
  // periods of this incarnation up to the newest reconciliation before this record (cumulative:
  // between two records of a domain, the drift is the change in their difference). Interval
  // records only; 0 when the daemon did not compare the domain, in final records and older logs.
  uint64_t reconcile_trace_running_ns = 0;
  uint64_t reconcile_xen_cpu_ns = 0;

  bool is_final() const { return final_reason != AcctFinalReason::kNotFinal; }
  static constexpr std::array kCounters = {
      &AcctDomainRecord::window_start_ns,
      &AcctDomainRecord::window_end_ns,
      &AcctDomainRecord::realtime_end_ns,
      &AcctDomainRecord::running_ns,
      &AcctDomainRecord::runnable_ns,
      &AcctDomainRecord::blocked_ns,
      &AcctDomainRecord::offline_ns,
      &AcctDomainRecord::dispatches,
      &AcctDomainRecord::run_slices,
      &AcctDomainRecord::slice_min_ns,
      &AcctDomainRecord::slice_max_ns,
      &AcctDomainRecord::slice_sum_ns,
      &AcctDomainRecord::allocated_ns,
      &AcctDomainRecord::allocations,
      &AcctDomainRecord::wakes,
      &AcctDomainRecord::blocks,
      &AcctDomainRecord::hypercalls,
      &AcctDomainRecord::io_records,
      &AcctDomainRecord::lost_records,
      &AcctDomainRecord::unknown_ns,
      &AcctDomainRecord::reconcile_trace_running_ns,
      &AcctDomainRecord::reconcile_xen_cpu_ns,
  };
  bool operator==(const AcctDomainRecord&) const = default;
};

struct AcctCpuRecord {
  uint32_t cpu = 0;
  uint64_t window_start_ns = 0;
  uint64_t window_end_ns = 0;
  uint64_t realtime_end_ns = 0;
  uint64_t elapsed_ns = 0;
  uint64_t accounted_ns = 0;  // time accounted to some domain, idle included
  uint64_t records = 0;
  uint64_t lost_records = 0;
  uint64_t lost_gap_ns = 0;        // part of elapsed_ns explained by lost records
  uint64_t capture_ratio_ppm = 0;  // accounted / (elapsed - lost_gap), in millionths

  static constexpr std::array kCounters = {
      &AcctCpuRecord::window_start_ns,   &AcctCpuRecord::window_end_ns,
      &AcctCpuRecord::realtime_end_ns,   &AcctCpuRecord::elapsed_ns,
      &AcctCpuRecord::accounted_ns,      &AcctCpuRecord::records,
      &AcctCpuRecord::lost_records,      &AcctCpuRecord::lost_gap_ns,
      &AcctCpuRecord::capture_ratio_ppm,
  };
  bool operator==(const AcctCpuRecord&) const = default;
};

struct AcctHostRecord {
  uint64_t window_start_ns = 0;
  uint64_t window_end_ns = 0;
  uint64_t realtime_end_ns = 0;
  uint64_t records = 0;       // trace records accounted in the window
  uint64_t lost_records = 0;  // reported lost by the hypervisor in the window
  uint64_t anomalies = 0;
  uint64_t live_domains = 0;
  // The log's own losses since the daemon started: records it failed to write and gave up on.
  // Nonzero means this log is incomplete, and by how much.
  uint64_t log_write_errors = 0;
  uint64_t log_dropped_records = 0;
  // Since 1.1: the daemon's own loss figures since its start (its health report), as of this
  // record. Unlike lost_records they include loss reported before the first window began and
  // they are cumulative, so the newest record of a run gives the run's loss whole.
  uint64_t run_lost_records = 0;
  uint64_t run_lost_records_at_start = 0;  // of run_lost_records, lost before the daemon started
  // Since 1.3: the host's reconciliation with the hypervisor's cpu_time since the daemon started,
  // as of this record (0: not reconciling): running time by each clock over the compared
  // periods, and the domain periods whose difference unknown time and read lag do not explain.
  uint64_t reconcile_trace_running_ns = 0;
  uint64_t reconcile_xen_cpu_ns = 0;
  uint64_t reconcile_unexplained_periods = 0;

  static constexpr std::array kCounters = {
      &AcctHostRecord::window_start_ns,
      &AcctHostRecord::window_end_ns,
      &AcctHostRecord::realtime_end_ns,
      &AcctHostRecord::records,
      &AcctHostRecord::lost_records,
      &AcctHostRecord::anomalies,
      &AcctHostRecord::live_domains,
      &AcctHostRecord::log_write_errors,
      &AcctHostRecord::log_dropped_records,
      &AcctHostRecord::run_lost_records,
      &AcctHostRecord::run_lost_records_at_start,
      &AcctHostRecord::reconcile_trace_running_ns,
      &AcctHostRecord::reconcile_xen_cpu_ns,
      &AcctHostRecord::reconcile_unexplained_periods,
  };
  bool operator==(const AcctHostRecord&) const = default;
};

enum class AcctRunPhase : uint32_t {
  kStart = 1,      // the run begins: every window record after it, up to the next run record
                   // of another run, belongs to it
  kContinued = 2,  // first record of a file the run rotated to: the same run goes on
  kEnd = 3,        // the run ended cleanly; the figures are its final ones
};

// A daemon run. Engine time (window_*_ns) starts again at 0 in each run, so a reader keys
// windows by run: without run records a log that spans restarts would mix several runs' windows.
struct AcctRunRecord {
  AcctRunPhase phase = AcctRunPhase::kStart;
  uint32_t pid = 0;
  // Counters, in on-disk order (kCounters below).
  uint64_t run_id = 0;             // random, the same in every record of one run
  uint64_t start_realtime_ns = 0;  // CLOCK_REALTIME when the run started
  uint64_t realtime_ns = 0;        // CLOCK_REALTIME when this record was made
  uint64_t engine_ns = 0;          // engine time then (0 at the start)
  // The daemon's figures since the run started, as of this record (0 at the start).
  uint64_t records = 0;
  uint64_t lost_records = 0;
  uint64_t lost_records_at_start = 0;
  uint64_t log_write_errors = 0;
  uint64_t log_dropped_records = 0;

  static constexpr std::array kCounters = {
      &AcctRunRecord::run_id,
      &AcctRunRecord::start_realtime_ns,
      &AcctRunRecord::realtime_ns,
      &AcctRunRecord::engine_ns,
      &AcctRunRecord::records,
      &AcctRunRecord::lost_records,
      &AcctRunRecord::lost_records_at_start,
      &AcctRunRecord::log_write_errors,
      &AcctRunRecord::log_dropped_records,
  };
  bool operator==(const AcctRunRecord&) const = default;
};

// A record with a tag this reader does not know (written by a newer daemon).
struct AcctUnknownRecord {
  uint16_t tag = 0;
  std::vector<std::byte> payload;
  bool operator==(const AcctUnknownRecord&) const = default;
};

using AcctRecord =
    std::variant<AcctDomainRecord, AcctCpuRecord, AcctHostRecord, AcctRunRecord, AcctUnknownRecord>;

// ---- Encoding: pure functions, each returns whole bytes ready for one write(2). ----
std::vector<std::byte> EncodeAcctHeader(const AcctLogHeader& header);
// Appends one framed record to `out` (so a batch of records can go out in one write).
void AppendAcctRecord(const AcctRecord& record, std::vector<std::byte>& out);
std::vector<std::byte> EncodeAcctRecord(const AcctRecord& record);

// ---- Decoding: pure, for the reader, the writer's start-up check and tests. ----
struct AcctParsedHeader {
  AcctLogHeader header;
  uint32_t header_bytes = 0;
};
Result<AcctParsedHeader> ParseAcctHeader(std::span<const std::byte> file);
// Parses the record frame starting at `offset` of `file`; `next_offset` is set past it.
Result<AcctRecord> ParseAcctRecord(std::span<const std::byte> file, uint64_t offset,
                                   uint64_t& next_offset);

// CRC32C (Castagnoli), the checksum of every header and frame.
uint32_t AcctCrc32c(std::span<const std::byte> bytes);

class AcctLogReader {
 public:
  // Reads the whole file (logs are rotated by size, so it is bounded). Errors: the file cannot
  // be read, or its header is missing, damaged or of another major version.
  static Result<AcctLogReader> Open(const std::string& path);
  static Result<AcctLogReader> FromBytes(std::vector<std::byte> bytes);

  const AcctLogHeader& header() const { return header_; }
  // The next intact record, or false at the end of the file or at the first damaged record (then
  // error() says what and where). `record_offset`, when given, receives the frame's offset.
  bool Next(AcctRecord& out, uint64_t* record_offset = nullptr);
  const std::optional<Error>& error() const { return error_; }
  // True when the log stops inside a record that was never finished (writer killed), as opposed
  // to a complete record that is damaged.
  bool truncated_tail() const { return error_ && error_->code == ErrorCode::kTruncated; }
  // Bytes of intact data: the header and every record delivered so far.
  uint64_t valid_bytes() const { return offset_; }
  uint64_t size() const { return bytes_.size(); }

 private:
  AcctLogReader() = default;
  std::vector<std::byte> bytes_;
  AcctLogHeader header_;
  uint64_t offset_ = 0;
  std::optional<Error> error_;
};

// Reads every intact record of a log. `stop` receives why reading stopped early, if it did.
struct AcctLogContents {
  AcctLogHeader header;
  std::vector<AcctRecord> records;
  std::optional<Error> stop;  // kTruncated (unfinished tail) or kCorrupt, with the byte offset
  uint64_t valid_bytes = 0;
};
Result<AcctLogContents> ReadAcctLog(std::span<const std::byte> bytes);
// The largest log read whole (the daemon rotates at 64 MiB): anything larger is refused, never
// read into memory.
inline constexpr uint64_t kAcctMaxReadBytes = 1ull << 30;
Result<AcctLogContents> ReadAcctLogFile(const std::string& path);

}  // namespace tracefmt
