#include "top/top_main.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <clocale>
#include <cstdio>
#include <string>
#include <thread>

#include "terminal.h"
#include "top/snapshot_feed.h"
#include "top/top_model.h"
#include "top/top_ui.h"

namespace xenbake::top {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr const char* kDescription =
    "A live view of xenbaked's per-domain accounting, in the spirit of xentop and xenmon: CPU, "
    "wait (runnable, not running) and blocked time per domain over the last 1 s and 10 s, from "
    "the daemon's shared-memory snapshot.";

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
  --batch prints one JSON object per interval (one line each), or with --format text a
  table, --iterations times (0: until interrupted). For scripts and logs.

EXAMPLES
  xenbaked --simulate --shm-name xenbaked &   # a daemon on the built-in simulator
  xenbake-top
  xenbake-top --sort wait
  xenbake-top --batch --iterations 3 --delay 1 | jq '.domains[] | {domid, windows}'

EXIT STATUS
  0  quit, or the iterations are done
  1  no daemon, a stale or stopped daemon at start, another snapshot version, a damaged
     snapshot, or no permission (the message says which)
  2  bad arguments
)HELP";

struct Options {
  std::string shm_path = "/dev/shm/xenbaked";
  bool batch = false;
  std::string format = "json";
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

int RunBatch(SnapshotFeed& feed, TopModel model, const Options& o, const UiState& ui) {
  for (uint64_t i = 0; o.iterations == 0 || i < o.iterations; ++i) {
    if (i != 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(o.delay_s));
      model = feed.Next();
    }
    Arrange(model, ui);
    if (o.format == "json") {
      fmt::print("{}\n", ModelJson(model).dump());
    } else {
      fmt::print("{}\n", FormatTable(model));
    }
    std::fflush(stdout);
    if (!model.warning.empty()) fmt::print(stderr, "xenbake-top: {}\n", model.warning);
  }
  return model.state == DaemonState::kLive ? kExitOk : kExitFailed;
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
  return kExitOk;
}

}  // namespace

int TopMain(int argc, char** argv) {
  std::setlocale(LC_ALL, "");  // names are UTF-8; ncursesw needs the locale to show them
  CLI::App app{kDescription, "xenbake-top"};
  app.set_version_flag("--version", "xenbake-top " XENBAKED_VERSION);
  app.footer(kFooter);
  Options o;
  app.add_option("--shm", o.shm_path, "the daemon's snapshot (xenbaked --shm-name NAME)")
      ->default_str("/dev/shm/xenbaked");
  app.add_flag("-b,--batch", o.batch, "print figures per interval instead of the live view");
  app.add_option("--format", o.format, "batch output: json (one object per line) or text")
      ->check(CLI::IsMember({"json", "text"}))
      ->default_str("json");
  app.add_option("-n,--iterations", o.iterations, "batch: how many intervals (0: no limit)")
      ->default_str("0");
  app.add_option("-d,--delay", o.delay_s, "seconds between updates")
      ->check(CLI::Range(0.05, 3600.0))
      ->default_str("1");
  app.add_option("--sort", o.sort,
                 "initial sort: cpu, wait, blocked, dispatches, slice, io, id, "
                 "name")
      ->default_str("cpu");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  UiState ui;
  const std::optional<SortKey> sort = ParseSortKey(o.sort);
  if (!sort) {
    fmt::print(stderr, "xenbake-top: --sort {}: not a column\n", o.sort);
    return kExitUsage;
  }
  ui.sort = *sort;
  ui.descending = !(*sort == SortKey::kId || *sort == SortKey::kName);

  tracefmt::Result<SnapshotFeed> feed = SnapshotFeed::Open(o.shm_path);
  if (!feed) {
    fmt::print(stderr, "xenbake-top: {}\n", ExplainOpenError(feed.error(), o.shm_path));
    return kExitFailed;
  }
  TopModel first = feed->Next();
  if (!StartsLive(first, o.shm_path)) return kExitFailed;
  if (o.batch) return RunBatch(*feed, std::move(first), o, ui);
  if (!::isatty(STDOUT_FILENO)) {
    fmt::print(stderr, "xenbake-top: standard output is not a terminal; use --batch\n");
    return kExitUsage;
  }
  return RunInteractive(*feed, std::move(first), o, ui);
}

}  // namespace xenbake::top
