// Command line and config file (CLI11): every option can also be given in the file named by
// --config (TOML, or INI with [sections]), the command line winning.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>

#include "tracefmt/events.h"
#include "xenbaked/daemon.h"
#include "xenbaked/options_exit.h"

namespace xenbaked {

std::optional<std::vector<uint32_t>> ParseCpuList(std::string_view text) {
  std::vector<uint32_t> out;
  if (text == "all" || text.empty()) return out;
  auto number = [](std::string_view s) -> std::optional<uint32_t> {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return std::nullopt;
    return v;
  };
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = text.substr(start, end - start);
    const size_t dash = item.find('-');
    auto lo = number(item.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : number(item.substr(dash + 1));
    if (!lo || !hi || *hi < *lo) return std::nullopt;
    for (uint32_t c = *lo; c <= *hi; ++c) out.push_back(c);
    start = end + 1;
  }
  return out;
}

DaemonOptions ParseOptions(int argc, char** argv) {
  DaemonOptions o;
  CLI::App app{
      "xenbaked — per-domain CPU accounting from Xen's trace buffers (dom0 daemon)\n\n"
      "Drains every CPU's trace buffer on the 50% interrupt (and on a backstop timer for CPUs "
      "that never reach it), merges the records by TSC and accounts, per domain and vCPU, time "
      "running, runnable (waiting for a CPU), blocked and offline, dispatches, wakes and lost "
      "records — every lost record is counted and reported. Each interval it publishes 1 s and "
      "10 s windows (configurable) to a shared-memory snapshot, a Unix-socket JSON API, a "
      "Prometheus endpoint and an accounting log, and optionally writes a raw xentrace-format "
      "capture.\n\n"
      "Backends: xen (libxenctrl, libxenforeignmemory, libxenevtchn, xenstore for names; needs "
      "root in dom0), simulate (a built-in simulated host: try it anywhere), auto (xen when "
      "/dev/xen/privcmd exists, else simulate)."};
  app.name("xenbaked");
  app.footer(R"(SIGNALS
  SIGTERM, SIGINT  disable tracing (unless --keep-tracing), drain every CPU once more, publish
                   the final figures, close the outputs, exit 0
  SIGHUP           rotate/reopen the accounting log

FILES
  /etc/xenbaked/xenbaked.conf   the packaged options (read with --config; TOML, key = option name)
  /dev/shm/NAME                 shared-memory snapshot (--shm-name), mode 0640; xenbake-top reads it
  /run/xenbaked/api.sock        JSON API socket (--socket), mode 0660, group --socket-group
  LOG-DIR/accounting.log        accounting log (--log-dir), rotated to accounting.log.1 ... .5
  Missing directories for the log, the socket and the capture are created, mode 0750.

EXIT STATUS
  0  stopped by a signal or --duration after the final drain
  1  start-up failed (no hypervisor access, tracing could not be enabled, an output could not
     be opened); the reason is logged
  2  bad command line or configuration
  3  ran, but writing the raw capture failed

EXAMPLES
  xenbaked                                     live table; the simulator when not on Xen
  xenbaked --simulate --sim-domains 50 --duration 10
  xenbaked --config /etc/xenbaked/xenbaked.conf --quiet          as the systemd unit runs it
  xenbaked --socket /run/xenbaked/api.sock --metrics-port 9587 --log-dir /var/log/xenbaked
  xenbaked --capture /var/tmp/all.xt --event-mask sched --duration 60   then: xenalyze all.xt

See also xenbake-top, xenbake-report, xenbake-account. The socket API and metrics are
described in xenbaked/docs/api.md, the snapshot in shm-layout.md, the log in acctlog.md.)");
  app.set_version_flag("--version", std::string("xenbaked ") + XENBAKED_VERSION);
  app.set_config("--config", "", "Read options from this TOML/INI file (command line wins)");
  app.option_defaults()->always_capture_default();

  std::string initial = "discard";
  std::string level = "info";
  app.add_option("--pages", o.pages_per_cpu,
                 "Trace buffer size in 4 KiB pages per CPU (Xen sets it once per boot)")
      ->check(CLI::Range(1u, 65535u));
  app.add_option(
      "--event-mask", o.event_mask,
      "Event classes to trace (gen,sched,dom0op,hvm,mem,pv,shadow,hw,all) or a hex mask. The "
      "default is what the accounting reads (scheduler runstate/switch/wake/block, dom0 domain "
      "ops); hypercall and I/O counts need pv,hvm,mem too, at a cost: Xen then traces every "
      "hypercall, VM exit and grant, taking hypervisor time and filling the buffers several "
      "times faster (more loss)");
  app.add_option("--cpu-mask", o.cpu_mask, "CPUs to trace: all, or a list like 0-3,6");
  app.add_option("--initial-contents", initial,
                 "Records found in the buffers at start: discard or account")
      ->check(CLI::IsMember({"discard", "account"}));
  app.add_flag("!--keep-tracing", o.disable_tracing_on_exit,
               "Leave tracing on at exit (default: disable it, then drain everything once more)");
  app.add_option("--backstop-ms", o.backstop_ms,
                 "Drain every CPU at least this often, in ms (idle CPUs never interrupt)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{60000}));
  app.add_option("--budget-kib", o.budget_kib,
                 "Drain at most this many KiB per CPU per pass (no CPU starves the others)")
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--interval-ms", o.interval_ms, "Publication interval in ms")
      ->check(CLI::Range(uint64_t{10}, uint64_t{3600000}));
  app.add_option("--windows", o.windows_s, "Accounting window lengths in seconds, comma-separated")
      ->delimiter(',');
  app.add_option("--history", o.history,
                 "Closed windows kept per length (memory grows with domains x vCPUs x this)")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--shm-name", o.shm_name,
                 "Shared-memory snapshot name, /dev/shm/NAME (default: off)");
  app.add_option("--socket", o.socket_path,
                 "Unix socket for the JSON API, mode 0660 (default: off)");
  app.add_option("--socket-group", o.socket_group,
                 "Group (name or number) that may use the socket (default: the daemon's)");
  int metrics_port = -1;
  app.add_option("--metrics-port", metrics_port,
                 "Serve Prometheus metrics on this TCP port (default: off; 0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->default_str("off");
  app.add_option("--metrics-address", o.metrics_address,
                 "Address the metrics endpoint binds (keep it local: no authentication)");
  app.add_option("--log-dir", o.log_dir,
                 "Directory of the accounting log, accounting.log (default: off)");
  app.add_option("--capture", o.capture_path,
                 "Write everything drained to this xentrace-format file (default: off)");
  app.add_option("--log-level", level,
                 "Least severe message logged (to stderr; the journal under systemd)")
      ->check(CLI::IsMember({"error", "warning", "notice", "info", "debug"}));
  app.add_flag("--quiet,-q", o.quiet,
               "No live table on a terminal (it is drawn only when stdout is one)");
  app.add_flag("--mlock", o.lock_memory,
               "Lock all memory (mlockall) so draining never waits for a page-in");
  app.add_option("--rt-priority", o.rt_priority,
                 "Run SCHED_FIFO at this priority, 1-99 (default 0: off)")
      ->check(CLI::Range(0, 99));
  app.add_option("--nice", o.nice, "Nice value of the process")->check(CLI::Range(-20, 19));
  app.add_option("--duration", o.duration_s,
                 "Run this many seconds, then exit as on SIGTERM (default 0: until a signal)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--backend", o.backend,
                 "Hypervisor backend: auto (xen when /dev/xen/privcmd exists), xen or simulate")
      ->check(CLI::IsMember({"auto", "xen", "simulate"}));
  bool simulate = false;
  app.add_flag("--simulate", simulate, "Same as --backend simulate");
  app.add_option("--sim-cpus", o.simulate.cpus, "Simulated physical CPUs")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--sim-domains", o.simulate.domains, "Simulated domains (Domain-0 included)")
      ->check(CLI::Range(1u, 32000u));
  app.add_option("--sim-vcpus", o.simulate.vcpus, "vCPUs per simulated domain")
      ->check(CLI::Range(1u, 512u));
  app.add_option("--sim-speed", o.simulate.speed, "Simulated seconds per wall-clock second")
      ->check(CLI::PositiveNumber);
  app.add_option("--sim-seed", o.simulate.seed, "Simulator random seed");
  app.add_option("--sim-churn", o.simulate.churn_hz, "Simulated domain creations per second")
      ->check(CLI::NonNegativeNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage or configuration error exits 2.
    throw OptionsExit{app.exit(e) == 0 ? 0 : 2};
  }
  if (simulate) o.backend = "simulate";
  if (metrics_port >= 0) o.metrics_port = static_cast<uint16_t>(metrics_port);
  o.initial_contents = initial == "account" ? InitialContents::kAccount : InitialContents::kDiscard;
  o.log_level = *ParseLogLevel(level);
  if (!tracefmt::ParseEventMask(o.event_mask)) {
    std::fprintf(stderr, "--event-mask: '%s' is neither class names nor a number\n",
                 o.event_mask.c_str());
    throw OptionsExit{2};
  }
  if (!ParseCpuList(o.cpu_mask)) {
    std::fprintf(stderr, "--cpu-mask: '%s' is not 'all' or a list like 0-3,6\n",
                 o.cpu_mask.c_str());
    throw OptionsExit{2};
  }
  for (uint64_t w : o.windows_s)
    if (w == 0) {
      std::fprintf(stderr, "--windows: lengths must be positive\n");
      throw OptionsExit{2};
    }
  return o;
}

}  // namespace xenbaked
