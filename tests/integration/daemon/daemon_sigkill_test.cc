// The installed-shape xenbaked binary, killed with SIGKILL mid-run: its accounting log reads back
// with every record whole and checksummed (at most an unfinished last write, reported as
// truncated, never a corrupt record), and the next daemon continues the same file so that it
// reads back whole to the end. The daemon runs on its embedded simulator, publishing often so
// that the kills land among the writes (one window's records, a few hundred, every second).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../../unit/publish/fake_host.h"
#include "tracefmt/acctlog.h"

namespace {

namespace fs = std::filesystem;
using xenbaked::publish::testing::TempDir;

pid_t StartDaemon(const std::string& log_dir, const std::string& duration_s) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const std::vector<std::string> args = {
      XENBAKED_BIN, "--backend",     "simulate", "--sim-domains", "200", "--quiet",     "--log-dir",
      log_dir,      "--interval-ms", "10",       "--shm-name",    "",    "--log-level", "error",
      "--duration", duration_s};
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// Whole records in the log now (0 while it does not exist yet).
size_t RecordsIn(const std::string& path) {
  if (!fs::exists(path)) return 0;
  tracefmt::Result<tracefmt::AcctLogContents> read = tracefmt::ReadAcctLogFile(path);
  return read ? read->records.size() : 0;
}

// Polls the log until it holds at least `records` (bounded: the daemon's own --duration ends
// the wait when something is wrong). Waiting on another process, not a timing assertion.
bool AwaitRecords(const std::string& path, size_t records, pid_t daemon) {
  for (int i = 0; i < 6000; ++i) {
    if (RecordsIn(path) >= records) return true;
    int status = 0;
    if (::waitpid(daemon, &status, WNOHANG) == daemon) return false;  // it exited early
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(DaemonKilled, WithSigkillMidRunTheAccountingLogReadsBackWithNoTornRecord) {
  TempDir dir;
  const std::string log_dir = dir.File("log");
  const std::string log_path = dir.File("log/accounting.log");
  size_t before = 0;
  for (int run = 0; run < 4; ++run) {
    SCOPED_TRACE(testing::Message() << "run " << run);
    const pid_t daemon = StartDaemon(log_dir, "120");
    ASSERT_GT(daemon, 0);
    // Each run kills at a different point: after 50, 150, 250, 350 more records ...
    ASSERT_TRUE(AwaitRecords(log_path, before + 50 + 100 * static_cast<size_t>(run), daemon))
        << "the daemon wrote no accounting records";
    // Then a different moment within the second between two windows' writes.
    std::this_thread::sleep_for(std::chrono::milliseconds(230 * run));
    ASSERT_EQ(::kill(daemon, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(daemon, &status, 0), daemon);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    tracefmt::Result<tracefmt::AcctLogContents> read = tracefmt::ReadAcctLogFile(log_path);
    ASSERT_TRUE(read) << read.error().Describe();
    // Every record before the end is whole and its checksum right; the only thing a kill may
    // leave is an unfinished last write, which the reader stops at and the next daemon cuts.
    if (read->stop) {
      EXPECT_EQ(read->stop->code, tracefmt::ErrorCode::kTruncated) << read->stop->Describe();
    }
    EXPECT_GT(read->records.size(), before);
    before = read->records.size();
  }
  // A daemon that runs to its end on the same directory continues the file: it reads back whole.
  const pid_t last = StartDaemon(log_dir, "0.3");
  int status = 0;
  ASSERT_EQ(::waitpid(last, &status, 0), last);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  tracefmt::Result<tracefmt::AcctLogContents> read = tracefmt::ReadAcctLogFile(log_path);
  ASSERT_TRUE(read) << read.error().Describe();
  EXPECT_FALSE(read->stop.has_value()) << read->stop->Describe();
  EXPECT_GE(read->records.size(), before);
}

}  // namespace
