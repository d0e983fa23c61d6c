#include "xenbaked/publish/accounting_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "xenbaked/publish/publish_view.h"

namespace xenbaked::publish {

using tracefmt::ErrorCode;
using tracefmt::MakeError;
using tracefmt::MakeSystemError;
using tracefmt::Status;

AccountingLog::AccountingLog(AccountingLogConfig config, RealtimeClock clock)
    : config_(std::move(config)), clock_(std::move(clock)) {}

AccountingLog::AccountingLog(AccountingLog&&) noexcept = default;
AccountingLog& AccountingLog::operator=(AccountingLog&&) noexcept = default;
AccountingLog::~AccountingLog() = default;

tracefmt::Result<AccountingLog> AccountingLog::Open(AccountingLogConfig config,
                                                    RealtimeClock clock) {
  if (config.path.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "accounting log path is empty");
  }
  AccountingLog log(std::move(config), std::move(clock));
  // A file that opened but whose header could not be written (a full disk) is still usable: the
  // header stays pending and the error is counted, like any later write error.
  if (Status s = log.OpenFile(); !s && !log.fd_) return s.error();
  return log;
}

Status AccountingLog::Fail(tracefmt::Error error) {
  ++stats_.write_errors;
  stats_.last_errno = error.sys_errno;
  return error;
}

void AccountingLog::Warn(const std::string& message) const {
  if (config_.warn) config_.warn(message);
}

std::optional<tracefmt::AcctRunRecord> AccountingLog::NextRunMark() {
  if (!config_.run) return std::nullopt;
  tracefmt::AcctRunRecord mark = *config_.run;
  mark.phase = run_started_ ? tracefmt::AcctRunPhase::kContinued : tracefmt::AcctRunPhase::kStart;
  mark.realtime_ns = clock_();
  run_started_ = true;
  return mark;
}

Status AccountingLog::OpenFile() {
  fd_.Reset(::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                   config_.mode));
  if (!fd_) return Fail(MakeSystemError(fmt::format("cannot open {}", config_.path)));
  const auto give_up = [this](const std::string& what) {
    Status s = Fail(MakeSystemError(what));
    fd_.Reset();
    return s;
  };
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return give_up(fmt::format("cannot look at {}", config_.path));
  // The umask may have narrowed the mode; the group must be able to read it all the same. Only
  // a regular file is ours to change: never a device such as /dev/full.
  if (S_ISREG(st.st_mode)) {
    if (config_.group && ::fchown(fd_.get(), uid_t(-1), *config_.group) != 0)
      return give_up(fmt::format("cannot give {} to group {}", config_.path, *config_.group));
    if (::fchmod(fd_.get(), config_.mode) != 0)
      return give_up(fmt::format("cannot set the mode of {}", config_.path));
  }
  if (st.st_size == 0) {
    size_ = 0;
    file_has_records_ = false;
    header_pending_ = true;
    return WriteHeader();
  }
  return AdoptExisting(uint64_t(st.st_size));
}

// Continues an existing file only when appending keeps it readable to the end: same format, same
// header, and nothing damaged but possibly an unfinished last record, which is cut off.
Status AccountingLog::AdoptExisting(uint64_t size) {
  tracefmt::Result<tracefmt::AcctLogContents> existing = tracefmt::ReadAcctLogFile(config_.path);
  const bool same_header = existing && existing->header.cpu_khz == config_.cpu_khz &&
                           existing->header.host == config_.host;
  const bool continuable =
      same_header && (!existing->stop || existing->stop->code == ErrorCode::kTruncated);
  if (!continuable) {
    std::string why;
    if (!existing) {
      why = fmt::format("not readable as an accounting log ({})", existing.error().Describe());
    } else if (!same_header) {
      why = fmt::format("written for host '{}' at {} kHz, not this host at {} kHz",
                        SanitizeName(existing->header.host), existing->header.cpu_khz,
                        config_.cpu_khz);
    } else {
      why = fmt::format("damaged at byte {} of {} ({})", existing->stop->offset, size,
                        existing->stop->message);
    }
    if (Status s = RotateFiles(); !s) return s;
    Warn(fmt::format("accounting log {}: {}; moved aside to {}.1 whole, a new log is started",
                     config_.path, why, config_.path));
    return OpenFile();
  }
  if (existing->valid_bytes < size) {
    if (::ftruncate(fd_.get(), off_t(existing->valid_bytes)) != 0) {
      return Fail(MakeSystemError("cannot cut the unfinished tail off the accounting log"));
    }
    stats_.repaired_tail_bytes += size - existing->valid_bytes;
    Warn(fmt::format(
        "accounting log {}: ends inside an unfinished record at byte {}: cut the last {} "
        "bytes off, appending after byte {}",
        config_.path, existing->valid_bytes, size - existing->valid_bytes, existing->valid_bytes));
  }
  size_ = existing->valid_bytes;
  file_has_records_ = !existing->records.empty();
  header_pending_ = false;
  // The run begins here in this file: its mark goes before anything this run appends.
  if (std::optional<tracefmt::AcctRunRecord> mark = NextRunMark()) QueueFront(*mark);
  return {};
}

Status AccountingLog::WriteHeader() {
  std::vector<std::byte> header = tracefmt::EncodeAcctHeader(
      {.created_realtime_ns = clock_(), .cpu_khz = config_.cpu_khz, .host = config_.host});
  std::vector<size_t> ends{header.size()};
  // A new file opens with the run's mark, in the same write as the header.
  const bool run_was_started = run_started_;
  const std::optional<tracefmt::AcctRunRecord> mark = NextRunMark();
  if (mark) {
    tracefmt::AppendAcctRecord(*mark, header);
    ends.push_back(header.size());
  }
  Status written = WriteBatch(header, ends);  // on failure `ends` keeps what went out whole
  if (!written && ends.empty()) {
    run_started_ = run_was_started;  // the mark is made again with the next header
    return written;
  }
  header_pending_ = false;
  if (!written && mark && ends.size() < 2) QueueFront(*mark);
  return written;
}

void AccountingLog::QueueFront(const tracefmt::AcctRecord& record) {
  std::vector<std::byte> bytes = tracefmt::EncodeAcctRecord(record);
  stats_.backlog_bytes += bytes.size();
  backlog_.push_front(std::move(bytes));
  stats_.backlog_records = backlog_.size();
}

// Writes whole records (their end offsets in `ends`) in one write(2). A short write is cut back
// to the last whole record so the file never holds a torn record that something follows.
// Returns with `ends` holding how many records went out (the first ends.size() after return).
Status AccountingLog::WriteBatch(std::vector<std::byte>& batch, std::vector<size_t>& ends) {
  ssize_t n;
  do {
    n = ::write(fd_.get(), batch.data(), batch.size());
  } while (n < 0 && errno == EINTR);
  if (n == ssize_t(batch.size())) {
    size_ += batch.size();
    stats_.bytes_written += batch.size();
    return {};
  }
  const int saved_errno = n < 0 ? errno : ENOSPC;  // a short write is the disk filling up
  size_t whole = 0;
  size_t whole_bytes = 0;
  while (n > 0 && whole < ends.size() && ends[whole] <= size_t(n)) whole_bytes = ends[whole++];
  if (n > 0 && size_t(n) != whole_bytes) {
    if (::ftruncate(fd_.get(), off_t(size_ + whole_bytes)) != 0) {
      // Cannot repair in place: the next open cuts the tail off instead.
      fd_.Reset();
    } else {
      stats_.repaired_tail_bytes += size_t(n) - whole_bytes;
      Warn(
          fmt::format("accounting log {}: a short write left part of a record at byte {}: cut "
                      "{} bytes off, the record stays queued",
                      config_.path, size_ + whole_bytes, size_t(n) - whole_bytes));
    }
  }
  size_ += whole_bytes;
  stats_.bytes_written += whole_bytes;
  ends.resize(whole);
  errno = saved_errno;
  return Fail(MakeSystemError(fmt::format("write to {}", config_.path)));
}

void AccountingLog::Append(const tracefmt::AcctRecord& record) {
  std::vector<std::byte> bytes = tracefmt::EncodeAcctRecord(record);
  backlog_.push_back(std::move(bytes));
  stats_.backlog_bytes += backlog_.back().size();
  // The oldest records go first: what is newest is what a reader of a live log wants most.
  while (stats_.backlog_bytes > config_.backlog_max_bytes && backlog_.size() > 1) {
    stats_.backlog_bytes -= backlog_.front().size();
    backlog_.pop_front();
    ++stats_.dropped_records;
  }
  stats_.backlog_records = backlog_.size();
}

Status AccountingLog::Flush() {
  if (!fd_) {
    if (Status s = OpenFile(); !s) return s;
  }
  if (header_pending_) {
    if (Status s = WriteHeader(); !s) return s;
  }
  bool wrote = false;
  std::vector<std::byte> batch;
  std::vector<size_t> ends;
  while (!backlog_.empty()) {
    batch.clear();
    ends.clear();
    for (size_t i = 0; i < backlog_.size(); ++i) {
      const std::vector<std::byte>& rec = backlog_[i];
      if (!batch.empty() && batch.size() + rec.size() > config_.max_write_bytes) break;
      batch.insert(batch.end(), rec.begin(), rec.end());
      ends.push_back(batch.size());
    }
    if (config_.rotate_bytes != 0 && size_ + batch.size() > config_.rotate_bytes &&
        file_has_records_) {
      if (Status s = RotateFiles(); !s) return s;
      if (Status s = OpenFile(); !s) return s;
    }
    Status written = WriteBatch(batch, ends);
    for (size_t i = 0; i < ends.size(); ++i) {
      stats_.backlog_bytes -= backlog_.front().size();
      backlog_.pop_front();
    }
    stats_.records_written += ends.size();
    stats_.backlog_records = backlog_.size();
    wrote = wrote || !ends.empty();
    file_has_records_ = file_has_records_ || !ends.empty();
    if (!written) return written;
  }
  if (wrote && config_.sync_on_flush && ::fdatasync(fd_.get()) != 0) {
    return Fail(MakeSystemError(fmt::format("fdatasync of {}", config_.path)));
  }
  return {};
}

// path.N is deleted, path.i becomes path.i+1, path becomes path.1. Missing files are skipped.
Status AccountingLog::RotateFiles() {
  fd_.Reset();
  const uint32_t keep = std::max<uint32_t>(config_.keep_files, 1);
  auto numbered = [this](uint32_t i) { return fmt::format("{}.{}", config_.path, i); };
  if (::unlink(numbered(keep).c_str()) != 0 && errno != ENOENT) {
    return Fail(MakeSystemError(fmt::format("cannot remove {}", numbered(keep))));
  }
  for (uint32_t i = keep - 1; i >= 1; --i) {
    if (::rename(numbered(i).c_str(), numbered(i + 1).c_str()) != 0 && errno != ENOENT) {
      return Fail(MakeSystemError(fmt::format("cannot rename {}", numbered(i))));
    }
  }
  if (::rename(config_.path.c_str(), numbered(1).c_str()) != 0 && errno != ENOENT) {
    return Fail(MakeSystemError(fmt::format("cannot rename {}", config_.path)));
  }
  ++stats_.rotations;
  return {};
}

Status AccountingLog::Reopen() {
  // What cannot be written to the old file stays queued for the new one (errors are counted).
  (void)Flush();
  bool still_at_path = false;
  if (fd_) {
    struct stat open_file {};
    struct stat at_path {};
    still_at_path = ::fstat(fd_.get(), &open_file) == 0 &&
                    ::stat(config_.path.c_str(), &at_path) == 0 &&
                    open_file.st_dev == at_path.st_dev && open_file.st_ino == at_path.st_ino;
  }
  if (still_at_path) {
    if (Status s = RotateFiles(); !s) return s;
  }
  if (Status s = OpenFile(); !s) return s;
  return Flush();
}

Status AccountingLog::Close() {
  Status flushed = fd_ || !backlog_.empty() ? Flush() : Status{};
  stats_.dropped_records += backlog_.size();
  backlog_.clear();
  stats_.backlog_records = 0;
  stats_.backlog_bytes = 0;
  fd_.Reset();
  return flushed;
}

}  // namespace xenbaked::publish
