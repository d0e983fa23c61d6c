// Command line and config file (CLI11): every option can also be given in the file named by
// --config (flat TOML, read strictly by ParseFlatConfig), the command line winning. Every value is
// checked here, ranges after unit conversion included, so nothing past this point can overflow.
#include "xenbaked/options.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "tracefmt/events.h"
#include "xenbaked/config_file.h"
#include "xenbaked/daemon.h"
#include "xenbaked/options_exit.h"

namespace xenbaked {
namespace {

// An input as a message shows it: at most 40 characters, so a 300-digit number stays short.
std::string Shown(const std::string& input) {
  return input.size() <= 40 ? input : input.substr(0, 37) + "...";
}

// A range check with a short message ("must be from 1 to 604800"); CLI::Range prints its bounds
// with std::to_string, 300 digits for a double's. Non-finite numbers never pass.
template <typename T>
CLI::Validator Within(T lo, T hi, bool lo_exclusive = false) {
  const std::string bounds = lo_exclusive ? fmt::format("more than {} and at most {}", lo, hi)
                                          : fmt::format("from {} to {}", lo, hi);
  return CLI::Validator(
      [lo, hi, lo_exclusive, bounds](std::string& input) -> std::string {
        T value{};
        if (!CLI::detail::lexical_cast(input, value))
          return fmt::format("'{}' is not a number {}", Shown(input), bounds);
        if constexpr (std::is_floating_point_v<T>) {
          if (!std::isfinite(value))
            return fmt::format("'{}' is not a number {}", Shown(input), bounds);
        }
        const bool below = lo_exclusive ? !(value > lo) : value < lo;
        if (below || value > hi)
          return fmt::format("{} is out of range: must be {}", Shown(input), bounds);
        return {};
      },
      bounds);
}

// Names xenbaked gives the files beside its outputs (PATH.lock, CAPTURE.meta): an output named so
// could stand for another daemon's lock or sidecar and replace it.
std::string ReservedSuffixProblem(const std::string& path) {
  if (!path.ends_with(".lock") && !path.ends_with(".meta")) return {};
  return fmt::format("'{}' ends in .lock or .meta, the names of xenbaked's lock and sidecar files",
                     Shown(path));
}

// A shared-memory name is one file in /dev/shm: no directory part, nothing that climbs out.
const CLI::Validator kShmName(
    [](std::string& name) -> std::string {
      if (name.empty()) return {};  // off
      if (name == "." || name == ".." || name.find('/') != std::string::npos || name.size() > 200)
        return fmt::format(
            "'{}' is not a snapshot name: one name of at most 200 characters, no "
            "'/', in /dev/shm",
            Shown(name));
      return ReservedSuffixProblem(name);
    },
    "NAME");

const CLI::Validator kCapturePath([](std::string& path) { return ReservedSuffixProblem(path); },
                                  "FILE");

// Where each key of the configuration file was set, for messages.
struct ConfigLines {
  std::string file;
  std::map<std::string, size_t> line_of;
};

// CLI11's configuration reader replaced by ParseFlatConfig, plus a check of every key against the
// options: CLI11's own reader skips lines it cannot parse and keys it does not know.
class StrictConfig final : public CLI::Config {
 public:
  StrictConfig(const CLI::App& app, ConfigLines& lines) : app_(app), lines_(lines) {}

  std::string to_config(const CLI::App* /*app*/, bool /*default_also*/, bool /*write_description*/,
                        std::string /*prefix*/) const override {
    return {};
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    const std::string file = app_.get_config_ptr()->as<std::string>();
    std::string text(kMaxConfigBytes + 1, '\0');
    input.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(input.gcount()));
    auto entries = ParseFlatConfig(text, file);
    if (!entries) throw CLI::ConfigError(entries.error().message);
    std::vector<CLI::ConfigItem> items;
    lines_.file = file;
    for (ConfigEntry& entry : *entries) {
      const CLI::Option* option = app_.get_option_no_throw("--" + entry.key);
      if (option == nullptr || entry.key == "config" || entry.key == "help" ||
          entry.key == "version")
        throw CLI::ConfigError(fmt::format(
            "{} line {}: '{}' is not an option of xenbaked (xenbaked --help lists them)", file,
            entry.line, entry.key));
      if (entry.is_array && option->get_items_expected_max() <= 1)
        throw CLI::ConfigError(fmt::format("{} line {}: '{}' takes one value, not an array", file,
                                           entry.line, entry.key));
      lines_.line_of[entry.key] = entry.line;
      CLI::ConfigItem& item = items.emplace_back();
      item.name = entry.key;
      item.inputs = std::move(entry.values);
    }
    return items;
  }

 private:
  const CLI::App& app_;
  ConfigLines& lines_;
};

// "--key: ..." about a key the file set (and the command line did not): says where.
std::string WithConfigLine(std::string message, const ConfigLines& lines, int argc, char** argv) {
  for (const auto& [key, line] : lines.line_of) {
    const std::string flag = "--" + key;
    if (!message.starts_with(flag + ":") && !message.starts_with(flag + " ")) continue;
    bool on_command_line = false;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == flag || arg.starts_with(flag + "=")) on_command_line = true;
    }
    if (!on_command_line) message += fmt::format(" (set in {} line {})", lines.file, line);
  }
  return message;
}

[[noreturn]] void BadOption(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  throw OptionsExit{cli::kExitUsage};
}

bool IsIpAddress(const std::string& text) {
  in6_addr v6{};
  in_addr v4{};
  return ::inet_pton(AF_INET, text.c_str(), &v4) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), &v6) == 1;
}

bool IsLoopback(const std::string& text) {
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

}  // namespace

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
      "Per-domain CPU accounting from Xen's trace buffers (dom0 daemon)\n\n"
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
  cli::Configure(app, "xenbaked");
  app.footer(R"(SIGNALS
  SIGTERM, SIGINT  disable tracing (unless --keep-tracing), drain every CPU once more, publish
                   the final figures, close the outputs, exit 0
  SIGHUP           rotate/reopen the accounting log; but when the live table is drawn on a
                   terminal and that terminal has hung up (closed window, lost ssh session),
                   end as on SIGTERM: the terminal is gone

FILES
  /etc/xenbaked/xenbaked.conf   the packaged options (--config; flat TOML, key = option name)
  /dev/shm/xenbaked             shared-memory snapshot (--shm-name), mode 0640; xenbake-top reads it
  /run/xenbaked/api.sock        JSON API socket (--socket), mode 0660, group --socket-group
  LOG-DIR/accounting.log        accounting log (--log-dir), rotated to accounting.log.1 ... .5
  CAPTURE, CAPTURE.meta         raw capture (--capture) and its sidecar, new files mode 0640
  PATH.lock                     beside each output: the pid of the daemon using it; a second
                                daemon on the same paths stops before touching anything
  Missing directories for the log, the socket and the capture are created, mode 0750.

)" +
             cli::ExitStatusSection(
                 {.ok = "stopped by a signal or --duration after the final drain",
                  .failure = "start-up failed (no hypervisor access, tracing could not be "
                             "enabled, an output could not be opened, another xenbaked uses the "
                             "same paths); the reason is logged",
                  .usage = "configuration (the file's errors name its line), or a --cpu-mask "
                           "naming no CPU of this host",
                  .partial = "ran, but writing the raw capture failed"}) +
             R"(
EXAMPLES
  xenbaked                                     live table and /dev/shm/xenbaked for xenbake-top;
                                               the simulator when not on Xen
  xenbaked --simulate --sim-domains 50 --duration 10
  xenbaked --config /etc/xenbaked/xenbaked.conf --quiet          as the systemd unit runs it
  xenbaked --socket /run/xenbaked/api.sock --metrics-port 9587 --log-dir /var/log/xenbaked
  xenbaked --capture /var/tmp/all.xt --event-mask sched --duration 60   then: xenalyze all.xt

See also xenbake-top, xenbake-report, xenbake-account. The socket API and metrics are
described in xenbaked/docs/api.md, the snapshot in shm-layout.md, the log in acctlog.md.)");
  app.set_config("--config", "",
                 "Read options from this file: flat TOML, key = value lines (command line wins)")
      ->type_name("FILE");
  ConfigLines config_lines;
  app.config_formatter(std::make_shared<StrictConfig>(app, config_lines));
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.option_defaults()->always_capture_default();

  std::string initial = "discard";
  std::string level = "info";
  app.add_option("--pages", o.pages_per_cpu,
                 "Trace buffer size in 4 KiB pages per CPU (Xen sets it once per boot)")
      ->check(Within(1u, 65535u));
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
      ->check(Within(uint64_t{1}, uint64_t{60000}));
  app.add_option("--budget-kib", o.budget_kib,
                 "Drain at most this many KiB per CPU per pass (no CPU starves the others)")
      ->check(Within(1u, 1u << 20));
  app.add_option("--interval-ms", o.interval_ms, "Publication interval in ms")
      ->check(Within(uint64_t{10}, uint64_t{3600000}));
  app.add_option("--reconcile-interval-ms", o.reconcile_interval_ms,
                 "Compare the trace with the hypervisor's per-vCPU cpu_time at least this often, "
                 "in ms (one query per vCPU; 0: never)")
      ->check(Within(uint64_t{0}, uint64_t{3600000}));
  app.add_option("--windows", o.windows_s,
                 "Accounting window lengths in seconds, comma-separated (1 s to a week each)")
      ->delimiter(',')
      ->check(Within(uint64_t{1}, limits::kMaxWindowSeconds));
  app.add_option("--history", o.history,
                 "Closed windows kept per length (memory grows with domains x vCPUs x this)")
      ->check(Within(1u, 100000u));
  // Published by default, where xenbake-top looks by default: the two meet with no options.
  o.shm_name = "xenbaked";
  app.add_option("--shm-name", o.shm_name,
                 "Shared-memory snapshot name, /dev/shm/NAME, that xenbake-top reads; \"\" = off "
                 "(default: xenbaked)")
      ->check(kShmName)
      ->type_name("NAME");
  app.add_option("--socket", o.socket_path,
                 "Unix socket for the JSON API, mode 0660 (default: off)");
  app.add_option("--socket-group", o.socket_group,
                 "Group (name or number) that may use the socket (default: the daemon's)");
  int metrics_port = -1;
  app.add_option("--metrics-port", metrics_port,
                 "Serve Prometheus metrics on this TCP port (default: off; 0 = any free port)")
      ->check(Within(0, 65535))
      ->default_str("off");
  app.add_option("--metrics-address", o.metrics_address,
                 "Address the metrics endpoint binds (keep it local: no authentication)");
  app.add_option("--log-dir", o.log_dir,
                 "Directory of the accounting log, accounting.log (default: off)");
  app.add_option("--capture", o.capture_path,
                 "Write everything drained to this xentrace-format file (default: off)")
      ->check(kCapturePath);
  app.add_option("--log-level", level,
                 "Least severe message logged (to stderr; the journal under systemd)")
      ->check(CLI::IsMember({"error", "warning", "notice", "info", "debug"}));
  app.add_flag("--quiet,-q", o.quiet,
               "No live table on a terminal (it is drawn only when stdout is one)");
  app.add_flag("--mlock", o.lock_memory,
               "Lock all memory (mlockall) so draining never waits for a page-in");
  app.add_option("--rt-priority", o.rt_priority,
                 "Run SCHED_FIFO at this priority, 1-99 (default 0: off)")
      ->check(Within(0, 99));
  app.add_option("--nice", o.nice, "Nice value of the process")->check(Within(-20, 19));
  app.add_option("--duration", o.duration_s,
                 "Run this many seconds, then exit as on SIGTERM (default 0: until a signal)")
      ->check(Within(0.0, limits::kMaxDurationSeconds));
  app.add_option("--backend", o.backend,
                 "Hypervisor backend: auto (xen when /dev/xen/privcmd exists), xen or simulate")
      ->check(CLI::IsMember({"auto", "xen", "simulate"}));
  bool simulate = false;
  app.add_flag("--simulate", simulate, "Same as --backend simulate");
  app.add_option("--sim-cpus", o.simulate.cpus, "Simulated physical CPUs")
      ->check(Within(1u, 4096u));
  app.add_option("--sim-domains", o.simulate.domains, "Simulated domains (Domain-0 included)")
      ->check(Within(1u, 32000u));
  app.add_option("--sim-vcpus", o.simulate.vcpus, "vCPUs per simulated domain")
      ->check(Within(1u, 512u));
  app.add_option("--sim-speed", o.simulate.speed,
                 "Simulated seconds per wall-clock second (at most 100)")
      ->check(Within(0.0, limits::kMaxSimSpeed, /*lo_exclusive=*/true));
  app.add_option("--sim-seed", o.simulate.seed, "Simulator random seed");
  app.add_option("--sim-churn", o.simulate.churn_hz, "Simulated domain creations per second")
      ->check(Within(0.0, limits::kMaxSimChurnHz));

  if (std::optional<std::string> text = cli::GeneratedText(app, argc, argv, 8)) {
    std::fputs(text->c_str(), stdout);
    throw OptionsExit{cli::kExitOk};
  }
  // CLI11 opens the file before anything checks it: a FIFO or a device would block start-up.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::string file = arg == "--config" && i + 1 < argc ? argv[i + 1]
                             : arg.starts_with("--config=")    ? std::string(arg.substr(9))
                                                               : std::string();
    struct stat st {};
    if (!file.empty() && ::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      BadOption(fmt::format("--config: {} is not a regular file", file));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage or configuration error exits 2.
    if (e.get_exit_code() == 0) throw OptionsExit{app.exit(e)};
    BadOption(WithConfigLine(e.what(), config_lines, argc, argv) +
              "\nRun with --help for more information.");
  }
  if (simulate && o.backend != "auto" && o.backend != "simulate")
    BadOption(fmt::format("--simulate contradicts --backend {}", o.backend));
  if (simulate) o.backend = "simulate";
  if (metrics_port >= 0) o.metrics_port = static_cast<uint16_t>(metrics_port);
  o.initial_contents = initial == "account" ? InitialContents::kAccount : InitialContents::kDiscard;
  o.log_level = *ParseLogLevel(level);
  if (!tracefmt::ParseEventMask(o.event_mask)) {
    std::fprintf(stderr, "--event-mask: '%s' is neither class names nor a number\n",
                 o.event_mask.c_str());
    throw OptionsExit{cli::kExitUsage};
  }
  if (!ParseCpuList(o.cpu_mask)) {
    std::fprintf(stderr, "--cpu-mask: '%s' is not 'all' or a list like 0-3,6\n",
                 o.cpu_mask.c_str());
    throw OptionsExit{cli::kExitUsage};
  }
  if (o.windows_s.empty() || o.windows_s.size() > limits::kMaxWindowLengths)
    BadOption(fmt::format("--windows: give 1 to {} window lengths", limits::kMaxWindowLengths));
  if (std::set<uint64_t>(o.windows_s.begin(), o.windows_s.end()).size() != o.windows_s.size())
    BadOption("--windows: each window length once (the API tells windows apart by length)");
  if (o.socket_path.size() > limits::kMaxSocketPathBytes)
    BadOption(
        fmt::format("--socket: the path is {} bytes long; a Unix socket's can have at most {}",
                    o.socket_path.size(), limits::kMaxSocketPathBytes));
  if (!o.socket_path.empty() && o.socket_path.ends_with('/'))
    BadOption(fmt::format("--socket: '{}' names a directory, not a socket", o.socket_path));
  if (!IsIpAddress(o.metrics_address))
    BadOption(
        fmt::format("--metrics-address: '{}' is not an IPv4 or IPv6 address", o.metrics_address));
  return o;
}

std::vector<std::string> OptionWarnings(const DaemonOptions& o) {
  std::vector<std::string> warnings;
  // Time is accounted from runstate changes (SCHED_MIN); without them every domain shows 0.
  if (const std::optional<uint32_t> mask = tracefmt::ParseEventMask(o.event_mask);
      mask && !tracefmt::EventMaskAdmits(*mask, tracefmt::ev::kRunstateChange))
    warnings.push_back(fmt::format(
        "--event-mask {} traces no runstate changes (class sched): NOTHING IS ACCOUNTED, every "
        "domain will show 0% CPU; add sched to the mask",
        o.event_mask));
  if (o.metrics_port && !IsLoopback(o.metrics_address))
    warnings.push_back(fmt::format(
        "--metrics-address {}: the metrics endpoint is reachable beyond this host and has no "
        "authentication",
        o.metrics_address));
  return warnings;
}

std::vector<std::string> OptionNotices(const DaemonOptions& o, bool running_as_root) {
  std::vector<std::string> notices;
  if (!o.socket_path.empty() && o.socket_group.empty() && running_as_root)
    notices.push_back(fmt::format(
        "--socket {} without --socket-group: the socket is root's alone (mode 0660, group "
        "root); give --socket-group for other users' tools (xenbake-top)",
        o.socket_path));
  return notices;
}

tracefmt::Result<std::vector<std::string>> CheckCpuMask(const std::string& cpu_mask,
                                                        const PhysInfo& host) {
  std::vector<std::string> warnings;
  const std::optional<std::vector<uint32_t>> cpus = ParseCpuList(cpu_mask);
  if (!cpus || cpus->empty()) return warnings;  // "all" (a bad list never gets past ParseOptions)
  std::vector<uint32_t> missing;
  for (uint32_t cpu : *cpus)
    if (cpu > host.max_cpu_id) missing.push_back(cpu);
  if (missing.size() == cpus->size())
    return tracefmt::MakeError(
        tracefmt::ErrorCode::kInvalidArgument,
        fmt::format("--cpu-mask {}: none of these CPUs exists (this host's CPU ids are 0-{}), "
                    "nothing would be traced",
                    cpu_mask, host.max_cpu_id));
  if (!missing.empty())
    warnings.push_back(fmt::format(
        "--cpu-mask {}: CPU(s) {} do not exist on this host (CPU ids 0-{}); tracing the others",
        cpu_mask, fmt::join(missing, ","), host.max_cpu_id));
  return warnings;
}

}  // namespace xenbaked
