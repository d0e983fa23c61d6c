// The accounting log file (xenbaked/publish/accounting_log.h): append, crash safety under
// SIGKILL, rotation, unfinished tails, a full disk.
#include "xenbaked/publish/accounting_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "fake_host.h"

namespace xenbaked::publish {
namespace {

namespace fs = std::filesystem;
using testing::FileSizeLimit;
using tracefmt::AcctDomainRecord;
using tracefmt::AcctLogContents;
using tracefmt::ErrorCode;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "acctlog-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

AcctDomainRecord Domain(uint32_t domid, uint64_t running_ns) {
  AcctDomainRecord d;
  d.domid = domid;
  d.name = fmt::format("g{}", domid);  // not "g" + to_string: GCC 12 -O3 false -Wrestrict
  d.running_ns = running_ns;
  return d;
}

AccountingLogConfig Config(const std::string& path) {
  AccountingLogConfig config;
  config.path = path;
  config.cpu_khz = 2'000'000;
  config.host = "testhost";
  config.sync_on_flush = false;  // the page cache outlives a killed process; no power loss here
  return config;
}

AccountingLog::RealtimeClock FixedClock() {
  return [] { return uint64_t{1'700'000'000'000'000'000}; };
}

AcctLogContents ReadOrDie(const std::string& path) {
  tracefmt::Result<AcctLogContents> read = tracefmt::ReadAcctLogFile(path);
  EXPECT_TRUE(read) << read.error().Describe();
  return read ? std::move(*read) : AcctLogContents{};
}

// A log at `path` holding domains 0 .. count-1, closed.
void WriteDomains(const std::string& path, uint32_t count) {
  auto log = AccountingLog::Open(Config(path), FixedClock());
  ASSERT_TRUE(log) << log.error().Describe();
  for (uint32_t i = 0; i < count; ++i) log->Append(Domain(i, i));
  ASSERT_TRUE(log->Close());
}

TEST(AccountingLog, AppendsRecordsThatReadBackWithTheFilePermissions) {
  TempDir dir;
  AccountingLogConfig config = Config(dir.File("acct.log"));
  config.group = 4242;
  auto log = AccountingLog::Open(config, FixedClock());
  ASSERT_TRUE(log) << log.error().Describe();
  for (uint32_t i = 0; i < 10; ++i) log->Append(Domain(i, i * 1000));
  ASSERT_TRUE(log->Flush());
  EXPECT_EQ(log->stats().records_written, 10u);
  EXPECT_EQ(log->stats().backlog_records, 0u);
  ASSERT_TRUE(log->Close());

  struct stat st {};
  ASSERT_EQ(::stat(config.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_gid, 4242u);
  AcctLogContents read = ReadOrDie(config.path);
  EXPECT_EQ(read.header.host, "testhost");
  EXPECT_FALSE(read.stop.has_value());
  ASSERT_EQ(read.records.size(), 10u);
  EXPECT_EQ(std::get<AcctDomainRecord>(read.records[9]), Domain(9, 9000));
}

TEST(AccountingLog, ContinuesAnExistingLogAfterCuttingOffItsUnfinishedTail) {
  TempDir dir;
  const std::string path = dir.File("acct.log");
  WriteDomains(path, 1);
  {  // half a record, as a writer killed mid-write leaves it
    std::vector<std::byte> torn = tracefmt::EncodeAcctRecord(Domain(2, 2));
    std::ofstream out(path, std::ios::app | std::ios::binary);
    out.write(reinterpret_cast<const char*>(torn.data()), std::streamsize(torn.size() / 2));
  }
  EXPECT_EQ(ReadOrDie(path).stop->code, ErrorCode::kTruncated);
  auto log = AccountingLog::Open(Config(path), FixedClock());
  ASSERT_TRUE(log);
  EXPECT_GT(log->stats().repaired_tail_bytes, 0u);
  log->Append(Domain(3, 3));
  ASSERT_TRUE(log->Close());
  AcctLogContents read = ReadOrDie(path);
  EXPECT_FALSE(read.stop.has_value());
  ASSERT_EQ(read.records.size(), 2u);
  EXPECT_EQ(std::get<AcctDomainRecord>(read.records[0]).domid, 0u);
  EXPECT_EQ(std::get<AcctDomainRecord>(read.records[1]).domid, 3u);
  EXPECT_FALSE(fs::exists(path + ".1"));
}

TEST(AccountingLog, MovesADamagedOrForeignFileAsideInsteadOfAppendingAfterDamage) {
  TempDir dir;
  const std::string path = dir.File("acct.log");
  std::ofstream(path) << "this is not an accounting log\n";
  auto log = AccountingLog::Open(Config(path), FixedClock());
  ASSERT_TRUE(log);
  log->Append(Domain(1, 1));
  ASSERT_TRUE(log->Close());
  EXPECT_FALSE(ReadOrDie(path).stop.has_value());
  std::ifstream aside(path + ".1");
  std::string line;
  std::getline(aside, line);
  EXPECT_EQ(line, "this is not an accounting log");
}

// What opening the log at `path` said through AccountingLogConfig::warn.
std::vector<std::string> WarningsOnOpen(const std::string& path) {
  std::vector<std::string> lines;
  AccountingLogConfig config = Config(path);
  config.warn = [&lines](const std::string& line) { lines.push_back(line); };
  auto log = AccountingLog::Open(config, FixedClock());
  EXPECT_TRUE(log) << log.error().Describe();
  return lines;
}

TEST(AccountingLog, ADamagedLogMovedAsideIsWarnedAboutWithTheFileAndOffset) {
  TempDir dir;
  const std::string path = dir.File("acct.log");
  WriteDomains(path, 3);
  AcctLogContents before = ReadOrDie(path);
  const uint64_t second_record =
      before.valid_bytes - 2 * tracefmt::EncodeAcctRecord(Domain(1, 1)).size();
  {  // one byte of the second record's payload flipped: damage in the middle
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(second_record + 20));
    f.put('\xff');
  }
  const std::vector<std::string> warnings = WarningsOnOpen(path);
  ASSERT_EQ(warnings.size(), 1u);
  const std::string& line = warnings[0];
  EXPECT_NE(line.find(path), std::string::npos) << line;
  EXPECT_NE(line.find(fmt::format("byte {}", second_record)), std::string::npos) << line;
  EXPECT_NE(line.find("moved aside to " + path + ".1"), std::string::npos) << line;
  EXPECT_TRUE(fs::exists(path + ".1"));
}

TEST(AccountingLog, AnUnfinishedTailCutOffIsWarnedAbout) {
  TempDir dir;
  const std::string path = dir.File("acct.log");
  WriteDomains(path, 1);
  const uint64_t whole = fs::file_size(path);
  std::ofstream(path, std::ios::app | std::ios::binary) << "torn";
  const std::vector<std::string> warnings = WarningsOnOpen(path);
  ASSERT_EQ(warnings.size(), 1u);
  const std::string& line = warnings[0];
  EXPECT_NE(line.find(path), std::string::npos) << line;
  EXPECT_NE(line.find(fmt::format("byte {}", whole)), std::string::npos) << line;
  EXPECT_NE(line.find("cut the last 4 bytes off"), std::string::npos) << line;
}

tracefmt::AcctRunRecord RunOf(const tracefmt::AcctRecord& r) {
  const auto* run = std::get_if<tracefmt::AcctRunRecord>(&r);
  return run ? *run : tracefmt::AcctRunRecord{.run_id = 0};
}

// Each run marks where it starts, in a file it continues and in each file it rotates to, so a
// reader never takes one run's engine time for another's.
TEST(AccountingLog, EachRunMarksItsStartAndEachFileItRotatesTo) {
  TempDir dir;
  const std::string path = dir.File("acct.log");
  for (uint64_t run_id : {11, 22}) {
    AccountingLogConfig config = Config(path);
    config.run = tracefmt::AcctRunRecord{.run_id = run_id, .start_realtime_ns = run_id * 1000};
    auto log = AccountingLog::Open(config, FixedClock());
    ASSERT_TRUE(log);
    log->Append(Domain(1, run_id));
    ASSERT_TRUE(log->Close());
  }
  AcctLogContents read = ReadOrDie(path);
  ASSERT_EQ(read.records.size(), 4u);
  EXPECT_EQ(RunOf(read.records[0]).run_id, 11u);
  EXPECT_EQ(RunOf(read.records[0]).phase, tracefmt::AcctRunPhase::kStart);
  EXPECT_EQ(RunOf(read.records[0]).start_realtime_ns, 11'000u);
  EXPECT_EQ(std::get<AcctDomainRecord>(read.records[1]).running_ns, 11u);
  EXPECT_EQ(RunOf(read.records[2]).run_id, 22u);  // the second run continues the file
  EXPECT_EQ(RunOf(read.records[2]).phase, tracefmt::AcctRunPhase::kStart);
  EXPECT_EQ(std::get<AcctDomainRecord>(read.records[3]).running_ns, 22u);

  AccountingLogConfig config = Config(path);
  config.run = tracefmt::AcctRunRecord{.run_id = 33};
  auto log = AccountingLog::Open(config, FixedClock());
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->Reopen());  // SIGHUP: rotated, the run goes on in a new file
  log->Append(Domain(2, 33));
  ASSERT_TRUE(log->Close());
  AcctLogContents rotated = ReadOrDie(path);
  ASSERT_EQ(rotated.records.size(), 2u);
  EXPECT_EQ(RunOf(rotated.records[0]).run_id, 33u);
  EXPECT_EQ(RunOf(rotated.records[0]).phase, tracefmt::AcctRunPhase::kContinued);
  AcctLogContents old = ReadOrDie(path + ".1");
  EXPECT_EQ(RunOf(old.records.back()).phase, tracefmt::AcctRunPhase::kStart);
  EXPECT_EQ(RunOf(old.records.back()).run_id, 33u);
}

TEST(AccountingLog, RotatesBySizeKeepingWholeReadableFiles) {
  TempDir dir;
  AccountingLogConfig config = Config(dir.File("acct.log"));
  config.rotate_bytes = 1024;
  config.keep_files = 3;
  config.max_write_bytes = 300;
  auto log = AccountingLog::Open(config, FixedClock());
  ASSERT_TRUE(log);
  for (uint32_t i = 0; i < 60; ++i) {
    log->Append(Domain(i, i));
    ASSERT_TRUE(log->Flush());
  }
  ASSERT_TRUE(log->Close());
  EXPECT_GT(log->stats().rotations, 3u);
  EXPECT_FALSE(fs::exists(config.path + ".4"));
  uint32_t expected_next = 60;
  for (const std::string& name :
       {config.path, config.path + ".1", config.path + ".2", config.path + ".3"}) {
    ASSERT_TRUE(fs::exists(name)) << name;
    EXPECT_LE(fs::file_size(name), config.rotate_bytes) << name;
    AcctLogContents read = ReadOrDie(name);
    EXPECT_FALSE(read.stop.has_value()) << name;
    ASSERT_FALSE(read.records.empty()) << name;
    // Newest file first: each file ends where the next newer one begins.
    EXPECT_EQ(std::get<AcctDomainRecord>(read.records.back()).domid + 1, expected_next) << name;
    expected_next = std::get<AcctDomainRecord>(read.records.front()).domid;
  }
}

TEST(AccountingLog, ReopenRotatesItsOwnFileOrFollowsAnExternalRotation) {
  TempDir dir;
  const std::string path = dir.File("acct.log");
  auto log = AccountingLog::Open(Config(path), FixedClock());
  ASSERT_TRUE(log);
  log->Append(Domain(1, 1));
  ASSERT_TRUE(log->Reopen());  // SIGHUP with the file in place: rotated by us
  EXPECT_EQ(ReadOrDie(path + ".1").records.size(), 1u);
  log->Append(Domain(2, 2));
  ASSERT_TRUE(log->Flush());
  fs::rename(path, dir.File("moved-by-logrotate"));
  log->Append(Domain(3, 3));
  // The file was moved away: what is queued still goes to it, then a new file starts.
  ASSERT_TRUE(log->Reopen());
  log->Append(Domain(4, 4));
  ASSERT_TRUE(log->Close());
  EXPECT_EQ(ReadOrDie(dir.File("moved-by-logrotate")).records.size(), 2u);
  AcctLogContents fresh = ReadOrDie(path);
  ASSERT_EQ(fresh.records.size(), 1u);
  EXPECT_EQ(std::get<AcctDomainRecord>(fresh.records[0]).domid, 4u);
  EXPECT_EQ(ReadOrDie(path + ".1").records.size(), 1u);
  EXPECT_FALSE(fs::exists(path + ".2"));
}

TEST(AccountingLog, AFullDeviceIsCountedAndTheBacklogIsBounded) {
  AccountingLogConfig config = Config("/dev/full");
  config.backlog_max_bytes = 2000;
  auto log = AccountingLog::Open(config, FixedClock());
  ASSERT_TRUE(log) << log.error().Describe();
  EXPECT_EQ(log->stats().write_errors, 1u);  // the header
  EXPECT_EQ(log->stats().last_errno, ENOSPC);
  for (uint32_t i = 0; i < 100; ++i) log->Append(Domain(i, i));
  tracefmt::Status flushed = log->Flush();
  EXPECT_FALSE(flushed);
  EXPECT_EQ(flushed.error().sys_errno, ENOSPC);
  const AccountingLogStats& stats = log->stats();
  EXPECT_EQ(stats.records_written, 0u);
  EXPECT_LE(stats.backlog_bytes, config.backlog_max_bytes);
  EXPECT_GT(stats.dropped_records, 0u);
  EXPECT_EQ(stats.dropped_records + stats.backlog_records, 100u);
  EXPECT_FALSE(log->Close());
  EXPECT_EQ(log->stats().dropped_records, 100u);
}

TEST(AccountingLog, AShortWriteIsCutBackToWholeRecordsAndRetriedLater) {
  TempDir dir;
  AccountingLogConfig config = Config(dir.File("acct.log"));
  auto log = AccountingLog::Open(config, FixedClock());
  ASSERT_TRUE(log);
  log->Append(Domain(0, 0));
  ASSERT_TRUE(log->Flush());
  const uint64_t before = fs::file_size(config.path);
  {
    FileSizeLimit limit(before + 150);  // room for a part of the next batch only
    for (uint32_t i = 1; i <= 20; ++i) log->Append(Domain(i, i));
    EXPECT_FALSE(log->Flush());
    EXPECT_GT(log->stats().write_errors, 0u);
    EXPECT_GT(log->stats().backlog_records, 0u);
    AcctLogContents partial = ReadOrDie(config.path);
    EXPECT_FALSE(partial.stop.has_value()) << "a torn record was left in the file";
    EXPECT_EQ(partial.records.size() + log->stats().backlog_records, 21u);
  }
  ASSERT_TRUE(log->Flush());
  ASSERT_TRUE(log->Close());
  AcctLogContents read = ReadOrDie(config.path);
  EXPECT_FALSE(read.stop.has_value());
  ASSERT_EQ(read.records.size(), 21u);
  for (uint32_t i = 0; i <= 20; ++i) {
    EXPECT_EQ(std::get<AcctDomainRecord>(read.records[i]).domid, i);
  }
  EXPECT_EQ(log->stats().dropped_records, 0u);
}

// The child appends and flushes forever; the parent kills it with SIGKILL once it has written.
[[noreturn]] void WriteUntilKilled(const std::string& path, int ready_fd) {
  AccountingLogConfig config = Config(path);
  auto log = AccountingLog::Open(config, FixedClock());
  if (!log) ::_exit(2);
  for (uint64_t round = 0;; ++round) {
    for (uint32_t i = 0; i < 64; ++i) log->Append(Domain(i, round));
    if (!log->Flush()) ::_exit(3);
    if (round == 2 && ::write(ready_fd, "x", 1) != 1) ::_exit(4);
  }
}

TEST(AccountingLog, KilledWithSigkillMidRunTheLogReadsBackWhole) {
  TempDir dir;
  const std::string path = dir.File("acct.log");
  for (int run = 0; run < 5; ++run) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(ready[0]);
      WriteUntilKilled(path, ready[1]);
    }
    ::close(ready[1]);
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the writer died before writing";
    ::close(ready[0]);
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    AcctLogContents read = ReadOrDie(path);
    EXPECT_GE(read.records.size(), 3u * 64u);
    if (read.stop) {
      EXPECT_EQ(read.stop->code, ErrorCode::kTruncated) << read.stop->Describe();
    }
    for (const tracefmt::AcctRecord& r : read.records) {
      EXPECT_TRUE(std::holds_alternative<AcctDomainRecord>(r));
    }
  }
  // The next daemon continues the same file: nothing damaged in the middle.
  auto log = AccountingLog::Open(Config(path), FixedClock());
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->Close());
  EXPECT_FALSE(ReadOrDie(path).stop.has_value());
  EXPECT_FALSE(fs::exists(path + ".1"));
}

}  // namespace
}  // namespace xenbaked::publish
