// xenbaked/publish/accounting_log.h — the daemon's accounting log file: append-only, crash-safe,
// rotated, and honest about what it could not write. The format is tracefmt/acctlog.h.
//
// Crash safety: every record reaches the kernel as whole bytes in a write(2) on an O_APPEND
// descriptor, batched several whole records at a time. A SIGKILL can only cut the last write
// short; a short write the daemon survives (a full disk) is cut back to the last whole record
// with ftruncate before anything else is written. Open() checks a file it appends to and cuts an
// unfinished tail off, so damage never ends up in the middle of a log, and says so through
// `warn` (the file, the byte offset, what was done). Power loss: with
// `sync_on_flush` each Flush ends in fdatasync, so at most the last interval is lost.
//
// Full disk: a failed write keeps the records in a bounded in-memory backlog and the next Flush
// retries. When the backlog is full the oldest records are dropped and counted; the counts are in
// stats() for the health report and in every host record written.
//
// Runs: with `run` set, each file this log starts holds the run record right after its header
// (kStart the first time, kContinued after a rotation), and an existing file it continues gets a
// kStart record before anything else: a reader can tell one daemon run from the next.
//
// Each interval the daemon does:
//   for (const tracefmt::AcctRecord& r : builder.Interval(...)) log.Append(r);
//   log.Flush();                 // errors are also counted in stats()
// on SIGHUP:  log.Reopen();      // rotates path → path.1 …, or follows an external logrotate
// at exit:    append final records, then log.Close();
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tracefmt/acctlog.h"
#include "tracefmt/result.h"
#include "xenbaked/publish/unique_fd.h"

namespace xenbaked::publish {

struct AccountingLogConfig {
  std::string path;
  uint64_t cpu_khz = 0;  // written in each file's header
  std::string host;      // likewise
  // Rotate before a write would take the file past this many bytes; 0: only on Reopen().
  uint64_t rotate_bytes = 64ull << 20;
  uint32_t keep_files = 5;              // path.1 … path.N are kept, older ones deleted
  size_t backlog_max_bytes = 8u << 20;  // encoded records held while writes fail
  size_t max_write_bytes = 256u << 10;  // one write(2) carries at most this (whole records)
  bool sync_on_flush = true;            // fdatasync at the end of every Flush that wrote
  mode_t mode = 0640;
  std::optional<gid_t> group;  // fchown'd to root:group when set
  // The run this daemon writes (run_id, start, pid); phase and figures are set by the log.
  std::optional<tracefmt::AcctRunRecord> run;
  // Told, in a sentence naming the file and the byte offset, whenever existing data is moved
  // aside or cut off: the daemon logs it as a warning.
  std::function<void(const std::string&)> warn;
};

struct AccountingLogStats {
  uint64_t records_written = 0;
  uint64_t bytes_written = 0;
  uint64_t write_errors = 0;     // failed or short writes, failed opens and syncs
  int last_errno = 0;            // of the most recent error, 0 after none
  uint64_t dropped_records = 0;  // given up because the backlog was full: missing from the log
  uint64_t backlog_records = 0;  // queued, not yet written
  uint64_t backlog_bytes = 0;
  uint64_t rotations = 0;
  uint64_t repaired_tail_bytes = 0;  // unfinished tails cut off on open or after a short write
};

class AccountingLog {
 public:
  // CLOCK_REALTIME in ns, for file headers; injected so tests are deterministic.
  using RealtimeClock = std::function<uint64_t()>;

  // Opens (or creates) config.path for appending. An existing log of the same format with the
  // same host and cpu_khz is continued after its unfinished tail, if any, is cut off; anything
  // else at that path (another version, damage in the middle) is rotated away first, never
  // overwritten.
  static tracefmt::Result<AccountingLog> Open(AccountingLogConfig config, RealtimeClock clock);

  AccountingLog(AccountingLog&&) noexcept;
  AccountingLog& operator=(AccountingLog&&) noexcept;
  ~AccountingLog();  // closes without flushing: call Close() to keep queued records

  // Queues one record; nothing is written until Flush().
  void Append(const tracefmt::AcctRecord& record);
  // Writes every queued record it can. An error leaves the rest queued for the next Flush.
  tracefmt::Status Flush();
  // SIGHUP: flushes, then rotates the file if it is still at `path` (else someone rotated it
  // already) and starts a new one.
  tracefmt::Status Reopen();
  // Flushes, syncs and closes. Queued records that still cannot be written are counted dropped.
  tracefmt::Status Close();

  const AccountingLogStats& stats() const { return stats_; }
  const std::string& path() const { return config_.path; }
  // The run record this log writes (config.run), if any.
  const std::optional<tracefmt::AcctRunRecord>& run() const { return config_.run; }

 private:
  AccountingLog(AccountingLogConfig config, RealtimeClock clock);
  tracefmt::Status OpenFile();
  tracefmt::Status AdoptExisting(uint64_t size);
  tracefmt::Status WriteHeader();
  tracefmt::Status RotateFiles();
  tracefmt::Status WriteBatch(std::vector<std::byte>& batch, std::vector<size_t>& ends);
  tracefmt::Status Fail(tracefmt::Error error);
  void Warn(const std::string& message) const;
  void QueueFront(const tracefmt::AcctRecord& record);
  // The run record that opens a file: kStart for the first of this run, kContinued afterwards.
  std::optional<tracefmt::AcctRunRecord> NextRunMark();

  AccountingLogConfig config_;
  RealtimeClock clock_;
  UniqueFd fd_;
  uint64_t size_ = 0;  // bytes in the open file, all of them whole records
  bool header_pending_ = false;
  bool file_has_records_ = false;  // rotating a file without records would only churn names
  bool run_started_ = false;       // the kStart record is written or queued
  std::deque<std::vector<std::byte>> backlog_;
  AccountingLogStats stats_;
};

}  // namespace xenbaked::publish
