// The file tools refuse an input they would block on (a FIFO) with a clear message and their
// usage exit status, rather than waiting forever for a writer: xenbake-dump, xenbake-account and
// xenbake-timeline, for the trace path and for the FILE.meta sidecar they read first.
//
// Nothing here measures time. A watchdog thread stands by: if a tool is still blocked on the FIFO
// after a generous bound, the watchdog opens the FIFO's other end (which releases the blocked
// open) and records that it had to; the test then fails on that record, not on a clock.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../dump/run_dump.h"
#include "cli/exit_status.h"
#include "dom0tools/account.h"
#include "dom0tools/dump.h"
#include "timeline/timeline_main.h"
#include "tracefmt/clock.h"
#include "tracefmt/trace_file.h"

namespace {

class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/xenbake-fifo-XXXXXX";
    path_ = ::mkdtemp(templ);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Releases a reader blocked opening `fifo` once the bound passes, and says whether it had to.
class FifoWatchdog {
 public:
  explicit FifoWatchdog(std::string fifo) : fifo_(std::move(fifo)) {
    thread_ = std::thread([this] { Watch(); });
  }
  ~FifoWatchdog() { Finish(); }
  // Stops watching; true when a reader was found blocked and had to be released.
  bool Finish() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return released_;
  }

 private:
  void Watch() {
    std::unique_lock lock(mutex_);
    if (cv_.wait_for(lock, std::chrono::seconds(20), [this] { return done_; })) return;
    // Still running: keep opening the write end until the reader's open returns or we are done.
    while (!done_) {
      lock.unlock();
      const int fd = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        released_ = true;
        ::close(fd);
      }
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return done_; });
    }
  }

  std::string fifo_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  bool released_ = false;
  std::thread thread_;
};

using dom0tools::testing::RunCapturing;

// Runs a tool on a FIFO input with a watchdog standing by; true when it had to release the tool.
template <typename Main>
bool BlockedOn(const std::string& fifo, Main&& main_fn, const std::vector<std::string>& args,
               dom0tools::testing::DumpRun& run) {
  FifoWatchdog watchdog(fifo);
  run = RunCapturing(main_fn, args);
  return watchdog.Finish();
}

constexpr auto kAccountMain = [](int argc, const char* const* argv, std::FILE* out,
                                 std::FILE* err) {
  return dom0tools::AccountMain(argc, argv, out, err);
};

std::string MakeFifo(const TempDir& dir, const std::string& name) {
  const std::string path = dir / name;
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << path;
  return path;
}

TEST(FifoInput, TraceFileReaderRefusesAFifoWithoutWaitingForAWriter) {
  TempDir dir;
  const std::string fifo = MakeFifo(dir, "trace.bin");
  FifoWatchdog watchdog(fifo);
  auto reader = tracefmt::TraceFileReader::Open(fifo);
  EXPECT_FALSE(watchdog.Finish()) << "blocked opening a FIFO";
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.error().Describe().find("not a regular file"), std::string::npos)
      << reader.error().Describe();
}

TEST(FifoInput, SidecarThatIsAFifoIsRefusedWithoutWaiting) {
  TempDir dir;
  const std::string trace = dir / "trace.bin";
  std::ofstream(trace).put('\0');
  const std::string fifo = MakeFifo(dir, "trace.bin.meta");
  FifoWatchdog watchdog(fifo);
  auto meta = tracefmt::ReadCaptureMeta(trace);
  EXPECT_FALSE(watchdog.Finish()) << "blocked opening a FIFO sidecar";
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.error().Describe().find("not a regular file"), std::string::npos)
      << meta.error().Describe();
}

TEST(FifoInput, DumpRefusesAFifo) {
  TempDir dir;
  const std::string fifo = MakeFifo(dir, "trace.bin");
  dom0tools::testing::DumpRun run;
  EXPECT_FALSE(BlockedOn(
      fifo,
      [](int argc, const char* const* argv, std::FILE* out, std::FILE* err) {
        return dom0tools::DumpMain(argc, argv, out, err);
      },
      {"xenbake-dump", "--cpu-khz", "1000", fifo}, run))
      << "xenbake-dump blocked on a FIFO";
  EXPECT_EQ(run.status, cli::kExitFailure);
  EXPECT_NE(run.err.find("not a regular file"), std::string::npos) << run.err;
}

TEST(FifoInput, AccountRefusesAFifoAndAFifoSidecar) {
  TempDir dir;
  const std::string fifo = MakeFifo(dir, "trace.bin");
  dom0tools::testing::DumpRun run;
  EXPECT_FALSE(BlockedOn(fifo, kAccountMain, {"xenbake-account", "--cpu-khz", "1000", fifo}, run))
      << "xenbake-account blocked on a FIFO";
  EXPECT_EQ(run.status, cli::kExitFailure);
  EXPECT_NE(run.err.find("not a regular file"), std::string::npos) << run.err;
  // Without --cpu-khz the frequency comes from the sidecar, read before the trace.
  const std::string trace = dir / "plain.bin";
  std::ofstream(trace).put('\0');
  const std::string meta = MakeFifo(dir, "plain.bin.meta");
  EXPECT_FALSE(BlockedOn(meta, kAccountMain, {"xenbake-account", trace}, run))
      << "xenbake-account blocked on a FIFO sidecar";
  EXPECT_EQ(run.status, cli::kExitFailure);
  EXPECT_NE(run.err.find("not a regular file"), std::string::npos) << run.err;
}

TEST(FifoInput, TimelineRefusesAFifo) {
  TempDir dir;
  const std::string fifo = MakeFifo(dir, "trace.bin");
  const std::string out = dir / "out.json";
  FifoWatchdog watchdog(fifo);
  std::vector<std::string> args = {
      "xenbake-timeline", "--cpu-khz", "1000", "--no-progress", "-o", out, fifo};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  const int status = xenbake::timeline::TimelineMain(static_cast<int>(argv.size()), argv.data());
  EXPECT_FALSE(watchdog.Finish()) << "xenbake-timeline blocked on a FIFO";
  EXPECT_EQ(status, cli::kExitFailure);
}

}  // namespace
