#include "timeline/timeline_main.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "names/domain_name.h"
#include "progress.h"
#include "timeline/convert.h"
#include "tracefmt/clock.h"

namespace xenbake::timeline {
namespace {

constexpr const char* kDescription =
    "Convert a Xen trace into Chrome/Perfetto trace-event JSON\n\n"
    "Reads a xentrace file, standard input, or a capture still being written, and writes "
    "trace-event JSON to open in https://ui.perfetto.dev or chrome://tracing.";

constexpr const char* kFooter = R"HELP(
OUTPUT
  One process per domain ("domain 1 (g1)" when --name gives a name, "domain N" otherwise,
  "idle" for the idle domain 32767) with one thread per vCPU. Each thread's slices are the
  vCPU's runstates from TRC_SCHED_RUNSTATE_CHANGE: running, runnable (waiting for a CPU),
  blocked, offline; back to back, from the vCPU's first change to the end of the trace.
  A "lost records" process shows each TRC_LOST_RECORDS as a slice from the first lost record
  to the report on its CPU's track, plus a global instant where the loss began.
  A "physical CPUs" process holds a counter per CPU, "cpuN run queue": guest vCPUs now
  runnable whose last CPU (where they last ran) is N.
  Times are microseconds from the first record. "otherData" holds the counts of the
  conversion (records, slices, lost records, anomalies).
  The trace needs the CPU's TSC rate: --cpu-khz, or the sidecar TRACE.meta written by
  xenbaked and xenbake-sim beside a capture. Trace buffers must include the SCHED class
  (xenbake-tbuf set --mask sched, xentrace -e 0x0002f000).

STREAMING
  Events are written as they are produced: memory stays bounded by the number of vCPUs,
  whatever the size of the trace. Progress is shown on stderr when it is a terminal.
  With --follow, TRACE is a capture being written: the conversion keeps reading as it
  grows and ends after --idle seconds without growth, or on Ctrl-C / SIGTERM, with a
  complete JSON file either way.

EXAMPLES
  xenbake-timeline --cpu-khz 2596120 -o sched.json trace-sched.bin
  xenbake-timeline --name 1=g1 --name 2=g2 -o guests.json capture.bin
  xentrace -e 0x0002f000 /dev/stdout | xenbake-timeline --cpu-khz 2596120 -o live.json -
  xenbake-timeline --follow --idle 10 -o live.json /var/lib/xenbaked/capture.bin
)HELP";

struct Options {
  std::string input;
  std::string output = "-";
  uint64_t cpu_khz = 0;
  std::vector<std::string> names;
  bool follow = false;
  double idle_seconds = 5.0;
  bool progress = true;
};

// Closes what it owns (an opened output file), not stdout.
struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f != stdout) std::fclose(f);
  }
};
using OutputFile = std::unique_ptr<std::FILE, FileCloser>;

// --follow: waits for the capture to grow, a quarter second at a time, and gives up after
// `idle_seconds` without growth or at SIGINT/SIGTERM (blocked here and taken synchronously, so
// no handler and no global flag are needed).
class GrowthWaiter {
 public:
  GrowthWaiter(int fd, double idle_seconds) : fd_(fd), idle_seconds_(idle_seconds) {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals_, nullptr);
    last_size_ = Size();
  }
  bool operator()() {
    const off_t size = Size();
    if (size != last_size_) {
      last_size_ = size;
      idle_ = 0;
      return true;
    }
    if (idle_ >= idle_seconds_) return false;
    const timespec step{.tv_sec = 0, .tv_nsec = kStepNs};
    if (sigtimedwait(&signals_, nullptr, &step) > 0) return false;  // Ctrl-C: finish cleanly
    idle_ += static_cast<double>(kStepNs) / 1e9;
    return true;
  }

 private:
  static constexpr long kStepNs = 250'000'000;
  off_t Size() const {
    struct stat st {};
    return ::fstat(fd_, &st) == 0 ? st.st_size : 0;
  }
  int fd_;
  double idle_seconds_;
  double idle_ = 0;
  off_t last_size_ = 0;
  sigset_t signals_{};
};

int Report(const ConvertOutcome& outcome, const std::string& input) {
  if (!outcome.output.ok()) {
    fmt::print(stderr, "xenbake-timeline: {}\n", outcome.output.error().Describe());
    return cli::kExitFailure;
  }
  if (outcome.stats.anomalies != 0) {
    fmt::print(stderr,
               "xenbake-timeline: {} runstate changes did not follow from the vCPU's previous "
               "state (expected near lost records)\n",
               outcome.stats.anomalies);
  }
  if (outcome.stats.runstate_changes == 0) {
    fmt::print(stderr,
               "xenbake-timeline: {} has no runstate changes: was the SCHED class traced?\n",
               input);
  }
  if (outcome.input_error) {
    fmt::print(stderr, "xenbake-timeline: {}: {}; the timeline holds everything before it\n", input,
               outcome.input_error->Describe());
    return cli::kExitPartial;
  }
  return cli::kExitOk;
}

int Run(const Options& options) {
  TimelineConfig config;
  for (const std::string& text : options.names) {
    const auto assignment = ParseDomainNameAssignment(text);
    if (!assignment) {
      fmt::print(stderr, "xenbake-timeline: --name {}: expected ID=NAME with ID 0-32767\n", text);
      return cli::kExitUsage;
    }
    config.domain_names[assignment->first] = assignment->second;
  }
  const bool from_stdin = options.input == "-";
  if (from_stdin && options.cpu_khz == 0) {
    fmt::print(stderr, "xenbake-timeline: reading standard input needs --cpu-khz\n");
    return cli::kExitUsage;
  }
  if (from_stdin) {
    config.cpu_khz = options.cpu_khz;
  } else {
    tracefmt::Result<uint64_t> khz = tracefmt::ResolveCpuKhz(options.cpu_khz, options.input);
    if (!khz) {
      fmt::print(stderr, "xenbake-timeline: {}\n", khz.error().Describe());
      // No frequency anywhere: the command line must give it; an unreadable sidecar: a failure.
      return ::access((options.input + ".meta").c_str(), F_OK) != 0 ? cli::kExitUsage
                                                                    : cli::kExitFailure;
    }
    config.cpu_khz = *khz;
  }

  if (!from_stdin)
    if (std::optional<int> status = cli::RefuseOutputOverInput(
            "xenbake-timeline", {options.output}, {options.input, options.input + ".meta"}, stderr))
      return *status;
  OutputFile out(options.output == "-" ? stdout : std::fopen(options.output.c_str(), "w"));
  if (!out) {
    fmt::print(stderr, "xenbake-timeline: cannot write {}: {}\n", options.output,
               std::strerror(errno));
    return cli::kExitFailure;
  }
  TerminalProgress meter(options.progress && ::isatty(STDERR_FILENO) ? stderr : nullptr);
  const ProgressFn progress = [&](uint64_t done, uint64_t total, const TimelineStats& stats) {
    meter.Update(done, total, stats);
  };

  ConvertOutcome outcome;
  if (from_stdin || options.follow) {
    const int fd = from_stdin ? STDIN_FILENO : ::open(options.input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fmt::print(stderr, "xenbake-timeline: cannot open {}: {}\n", options.input,
                 std::strerror(errno));
      return cli::kExitFailure;
    }
    StreamOptions stream;
    if (options.follow) stream.wait_for_more = GrowthWaiter(fd, options.idle_seconds);
    outcome = ConvertTraceStream(fd, config, out.get(), stream, progress);
    if (!from_stdin) ::close(fd);
  } else {
    tracefmt::Result<tracefmt::TraceFileReader> file =
        tracefmt::TraceFileReader::Open(options.input);
    if (!file) {
      fmt::print(stderr, "xenbake-timeline: {}\n", file.error().Describe());
      return cli::kExitFailure;
    }
    outcome = ConvertTraceFile(*file, config, out.get(), progress);
  }
  meter.Clear();
  return Report(outcome, options.input);
}

}  // namespace

int TimelineMain(int argc, char** argv) {
  CLI::App app{kDescription};
  cli::Configure(app, "xenbake-timeline");
  app.footer(std::string(kFooter) +
             cli::ExitStatusSection(
                 {.ok = "converted",
                  .failure = "the input cannot be read or the output cannot be written",
                  .usage = "no CPU rate (give --cpu-khz), a bad --name",
                  .partial = "the input is damaged: the timeline holds everything before the "
                             "damage, and the message gives the byte offset"}));
  Options options;
  app.add_option("TRACE", options.input, "xentrace file, or - for standard input")
      ->required()
      ->type_name("TRACE");
  cli::AddOutput(app, options.output, "the JSON");
  app.add_option("--cpu-khz", options.cpu_khz,
                 "TSC frequency in kHz (xc_physinfo cpu_khz); default: the TRACE.meta sidecar")
      ->check(CLI::Range(tracefmt::kMinCpuKhz, tracefmt::kMaxCpuKhz))
      ->type_name("KHZ");
  app.add_option("--name", options.names, "Name a domain, ID=NAME (repeatable): --name 1=web")
      ->type_name("ID=NAME");
  app.add_flag("--follow", options.follow,
               "TRACE is still being written: keep converting as it grows");
  app.add_option("--idle", options.idle_seconds,
                 "With --follow: finish after this many seconds without growth")
      ->default_str("5")
      ->type_name("SECONDS")
      ->check(cli::FiniteRange(0.001, 1e6));
  app.add_flag("!--no-progress", options.progress, "No progress line on stderr");
  if (std::optional<int> status = cli::Parse(app, argc, argv, stdout, stderr)) return *status;
  return Run(options);
}

}  // namespace xenbake::timeline
