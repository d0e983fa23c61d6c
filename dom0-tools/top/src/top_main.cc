#include "top/top_main.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "terminal.h"
#include "top/snapshot_feed.h"
#include "top/top_model.h"
#include "top/top_ui.h"

namespace xenbake::top {
namespace {

constexpr const char* kDescription =
    "A live view of xenbaked's per-domain accounting\n\n"
    "In the spirit of xentop and xenmon: CPU, wait (runnable, not running) and blocked time per "
    "domain over the last 1 s and 10 s, from the daemon's shared-memory snapshot, which xenbaked "
    "publishes at /dev/shm/xenbaked by default: start the daemon, then xenbake-top, no options "
    "needed.";

constexpr const char* kFooter = R"HELP(
COLUMNS
  ID NAME     domain id and its name (sanitised: control and bidi characters shown as ?)
  VCPU        vCPUs
  ?           part of the newest 1 s window is time the trace cannot vouch for (lost
              records, a vCPU not yet seen): CPU%, WAIT and BLK% are lower bounds
  CPU%        time running, % of one physical CPU (2 vCPUs busy = 200%), 1 s / 10 s
  WAIT        time runnable but not running: waiting for a physical CPU (steal time)
  BLK%        time blocked (asleep)
  DISP/s      dispatches (switches into running) per second, 1 s window
  SLICE       mean run slice, 1 s window
  IO/s        I/O-related trace records per second; LOST: lost records charged to it
  CPU panel   per physical CPU: capture ratio (time accounted / elapsed), records/s,
              buffer fill now and peak, lost records
  Health      backend, uptime, fullest buffer, wakes by interrupt vs backstop timer,
              lost records, records/s, drain latency (p50, p99, max)
  A red WARNING line says when the daemon is stale (not publishing), stopped or gone.
  "-" marks a figure with no data yet (a window not closed, a domain not alive in it).

KEYS
  q quit   c cycle the CPU panel (all CPUs, then one at a time)   s next sort column
  r reverse the sort   t sort on the 10 s window   P W B D I N sort by CPU, wait,
  blocked, dispatches, id, name. The screen follows terminal resizes.

BATCH MODE
  --batch prints a table per interval, or with --format json one JSON object per interval
  (one line each), --iterations times (0: until interrupted). For scripts and logs.

EXAMPLES
  xenbaked --simulate --quiet &   # a daemon on the built-in simulator
  xenbake-top
  xenbake-top --sort wait
  xenbake-top --batch -n 3 -f json | jq '.domains[] | {domid, windows}'
)HELP";

struct Options {
  std::string shm_path = "/dev/shm/xenbaked";
  bool batch = false;
  std::string format = "text";
  std::string output = "-";
  uint64_t iterations = 0;
  double delay_s = 1.0;
  std::string sort = "cpu";
};

// Refuses to start on a daemon that is not publishing: its figures would mislead.
bool StartsLive(const TopModel& model, const std::string& path) {
  if (model.state == DaemonState::kLive) return true;
  fmt::print(stderr, "xenbake-top: {}: {}\n", path,
             model.warning.empty() ? "xenbaked is not live" : model.warning);
  return false;
}

void Arrange(TopModel& model, const UiState& ui) {
  SortDomains(model.domains, ui.sort, ui.descending, ui.sort_window);
}

int RunBatch(SnapshotFeed& feed, TopModel model, const Options& o, const UiState& ui,
             std::FILE* out) {
  for (uint64_t i = 0; o.iterations == 0 || i < o.iterations; ++i) {
    if (i != 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(o.delay_s));
      model = feed.Next();
    }
    Arrange(model, ui);
    if (o.format == "json") {
      fmt::print(out, "{}\n", ModelJson(model).dump());
    } else {
      fmt::print(out, "{}\n", FormatTable(model));
    }
    if (std::fflush(out) != 0) {
      fmt::print(stderr, "xenbake-top: cannot write {}: {}\n", o.output, std::strerror(errno));
      return cli::kExitFailure;
    }
    if (!model.warning.empty()) fmt::print(stderr, "xenbake-top: {}\n", model.warning);
  }
  return model.state == DaemonState::kLive ? cli::kExitOk : cli::kExitFailure;
}

int RunInteractive(SnapshotFeed& feed, TopModel model, const Options& o, UiState ui) {
  using Clock = std::chrono::steady_clock;
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.delay_s));
  Terminal terminal;
  auto next_read = Clock::now() + period;
  while (!ui.quit) {
    Arrange(model, ui);
    terminal.Draw(model, ui, o.shm_path);
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_read - Clock::now());
    const int key = terminal.WaitForKey(static_cast<int>(wait.count()));
    if (key >= 0) {
      HandleKey(ui, key, model.cpus.size());  // KEY_RESIZE needs only the redraw above
      continue;
    }
    model = feed.Next();
    next_read = Clock::now() + period;
  }
  return cli::kExitOk;
}

}  // namespace

int TopMain(int argc, char** argv) {
  std::setlocale(LC_ALL, "");  // names are UTF-8; ncursesw needs the locale to show them
  CLI::App app{kDescription};
  cli::Configure(app, "xenbake-top");
  app.footer(std::string(kFooter) +
             cli::ExitStatusSection(
                 {.ok = "quit, or the iterations are done",
                  .failure = "no daemon, a stale or stopped daemon at start, another snapshot "
                             "version, a damaged snapshot, or no permission (the message says "
                             "which)",
                  .usage = "the live view without a terminal (use --batch)",
                  .partial = ""}));
  Options o;
  app.add_option("--shm", o.shm_path, "The daemon's snapshot (xenbaked --shm-name NAME)")
      ->type_name("PATH")
      ->default_str("/dev/shm/xenbaked");
  app.add_flag("-b,--batch", o.batch, "Print figures per interval instead of the live view");
  cli::AddFormat(app, o.format, {"text", "json"},
                 "Batch output: text (a table) or json (one object per line)");
  cli::AddOutput(app, o.output, "the batch output");
  app.add_option("-n,--iterations", o.iterations, "Batch: how many intervals (0: no limit)")
      ->type_name("N")
      ->default_str("0");
  app.add_option("-d,--delay", o.delay_s, "Seconds between updates, 0.05-3600")
      ->check(cli::FiniteRange(0.05, 3600.0))
      ->type_name("SECONDS")
      ->default_str("1");
  app.add_option("--sort", o.sort,
                 "Initial sort: cpu, wait, blocked, dispatches, slice, io, id, name")
      ->check(CLI::IsMember({"cpu", "wait", "blocked", "dispatches", "slice", "io", "id", "name"}))
      ->type_name("COLUMN")
      ->default_str("cpu");
  if (std::optional<int> status = cli::Parse(app, argc, argv, stdout, stderr)) return *status;
  UiState ui;
  const std::optional<SortKey> sort = ParseSortKey(o.sort);
  if (!sort) {
    fmt::print(stderr, "xenbake-top: --sort {}: not a column\n", o.sort);
    return cli::kExitUsage;
  }
  ui.sort = *sort;
  ui.descending = !(*sort == SortKey::kId || *sort == SortKey::kName);

  tracefmt::Result<SnapshotFeed> feed = SnapshotFeed::Open(o.shm_path);
  if (!feed) {
    fmt::print(stderr, "xenbake-top: {}\n", ExplainOpenError(feed.error(), o.shm_path));
    return cli::kExitFailure;
  }
  TopModel first = feed->Next();
  if (!StartsLive(first, o.shm_path)) return cli::kExitFailure;
  if (!o.batch && !::isatty(STDOUT_FILENO)) {
    fmt::print(stderr, "xenbake-top: standard output is not a terminal; use --batch\n");
    return cli::kExitUsage;
  }
  if (o.batch) {
    return cli::WithOutput(o.output, stdout, stderr, "xenbake-top", [&](std::FILE* file) {
      return RunBatch(*feed, std::move(first), o, ui, file);
    });
  }
  return RunInteractive(*feed, std::move(first), o, ui);
}

}  // namespace xenbake::top
