#include "simulator/sim_main.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "simulator/capture_check.h"
#include "simulator/overflow_study.h"
#include "simulator/sim_server.h"
#include "simulator/simulated_host.h"
#include "simulator/truth_json.h"
#include "tracefmt/events.h"

namespace simulator {
namespace {

struct RunOptions {
  HostConfig host;
  std::string mask_text;
  uint32_t nr_cpus = 0;  // 0: use cpu_ids
  double duration_s = 0;
  double speed = 1.0;
  double lifetime_ms = 300;
  double burst_interval_ms = 0;
  double slice_ms = 10;
  double boot_ms = 2000;
  bool overflow = false;
  bool exit_after_disable = false;
  std::string truth_path = "-";
  std::string produced_path;
  std::string ready_path;
  std::vector<uint32_t> online_after_enable;
};

bool WriteText(const std::string& path, const std::string& text) {
  if (path == "-") {
    fmt::print("{}", text);
    return true;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

void AddRunOptions(CLI::App& run, RunOptions& o) {
  WorkloadConfig& w = o.host.workload;
  o.host.shm_path = "/dev/shm/xenbake-sim";
  run.add_option("--shm", o.host.shm_path, "trace-memory file the shim maps (XENBAKE_SIM)");
  run.add_option("--cpus", o.nr_cpus, "online physical CPUs 0..N-1 (or --cpu-ids)");
  run.add_option("--cpu-ids", w.cpu_ids, "online CPU ids, sparse allowed: 0,1,4")->delimiter(',');
  run.add_option("--offline-cpus", o.host.offline_cpu_ids, "CPU ids present but offline")
      ->delimiter(',');
  run.add_option("--online-after-enable", o.online_after_enable,
                 "offline CPU ids that come online once a consumer has enabled tracing (with no "
                 "trace buffer, as on Xen)")
      ->delimiter(',');
  run.add_option("--domains", w.domains, "domains at start, Domain-0 included");
  run.add_option("--vcpus", w.vcpus_per_domain, "vCPUs per domain");
  run.add_option("--seed", w.seed, "random seed (runs are deterministic given the seed)");
  run.add_option("--cpu-khz", w.cpu_khz, "TSC frequency reported by xc_physinfo");
  run.add_option("--slice-ms", o.slice_ms, "scheduler time slice")
      ->check(cli::FiniteRange(0.001, 1e6));
  run.add_option("--busy-fraction", w.busy_fraction, "share of guest vCPUs that never block");
  run.add_option("--hypercall-hz", w.hypercall_hz, "hypercall records per second per busy CPU");
  run.add_option("--io-hz", w.io_hz, "I/O records per second per busy CPU");
  run.add_option("--churn-hz", w.churn_hz, "domains created (and later destroyed) per second");
  run.add_option("--lifetime-ms", o.lifetime_ms, "mean lifetime of created domains")
      ->check(cli::FiniteRange(0, 1e9));
  run.add_option("--burst-interval-ms", o.burst_interval_ms, "mean time between record bursts")
      ->check(cli::FiniteRange(0, 1e9));
  run.add_option("--burst-records", w.burst_records, "records in one burst");
  run.add_flag("--overflow", o.overflow, "bursts big enough to overflow any small buffer");
  run.add_option("--boot-pages", o.host.boot_tbuf_pages,
                 "tbuf_size= on Xen's command line: tracing since boot, buffers full");
  run.add_option("--boot-ms", o.boot_ms, "how long tracing ran before the first consumer")
      ->check(cli::FiniteRange(0, 1e9));
  run.add_option("--mask", o.mask_text, "initial event mask: all, sched, 0x0002f000, ...");
  run.add_option("--duration", o.duration_s, "simulated seconds to run (0: until stopped)")
      ->check(cli::FiniteRange(0, 1e9));
  run.add_option("--speed", o.speed, "simulated seconds per wall-clock second")
      ->check(cli::FiniteRange(1e-3, 1e4));
  run.add_option("--replay", o.host.replay_path, "replay this xentrace capture instead");
  run.add_flag("--exit-after-disable", o.exit_after_disable,
               "stop once a consumer has enabled and then disabled tracing");
  run.add_option("--truth", o.truth_path, "where to write the truth JSON ('-': stdout)");
  run.add_option("--produced", o.produced_path,
                 "write every record produced, as a xentrace file (the reference for check)");
  run.add_option("--ready-file", o.ready_path, "written once the shim can attach");
}

int Run(RunOptions& o) {
  WorkloadConfig& w = o.host.workload;
  if (o.nr_cpus != 0) {
    w.cpu_ids.clear();
    for (uint32_t i = 0; i < o.nr_cpus; ++i) w.cpu_ids.push_back(i);
  }
  w.slice_ns = static_cast<uint64_t>(o.slice_ms * 1e6);
  w.mean_lifetime_ns = static_cast<uint64_t>(o.lifetime_ms * 1e6);
  w.burst_interval_ns = static_cast<uint64_t>(o.burst_interval_ms * 1e6);
  if (o.overflow) {
    w.burst_interval_ns = w.burst_interval_ns ? w.burst_interval_ns : 100'000'000;
    w.burst_records = std::max<uint32_t>(w.burst_records, 20000);
  }
  o.host.boot_traced_ns = static_cast<uint64_t>(o.boot_ms * 1e6);
  // A replay keeps capture time = simulated time; the real-time runner applies --speed.
  o.host.replay_speed = 1.0;
  o.host.keep_produced_log = !o.produced_path.empty();

  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto host = SimulatedHost::Create(o.host);
  if (!host) {
    fmt::print(stderr, "xenbake-sim: {}\n", host.error().Describe());
    return cli::kExitFailure;
  }
  if (!o.mask_text.empty()) {
    const std::optional<uint32_t> mask = tracefmt::ParseEventMask(o.mask_text);
    if (!mask) {
      fmt::print(stderr, "xenbake-sim: bad --mask '{}'\n", o.mask_text);
      return cli::kExitUsage;
    }
    (*host)->SetEventMask(*mask);
  }
  std::atomic<bool> enabled_once{false}, disabled_after{false};
  for (uint32_t cpu : o.online_after_enable) {
    const std::vector<uint32_t>& offline = o.host.offline_cpu_ids;
    if (std::find(offline.begin(), offline.end(), cpu) == offline.end()) {
      fmt::print(stderr, "xenbake-sim: --online-after-enable {}: not one of --offline-cpus\n", cpu);
      return cli::kExitUsage;
    }
  }
  auto server = SimServer::Start(**host, [&](SimOp op) {
    if (op == SimOp::kTbufEnable && !enabled_once)
      for (uint32_t cpu : o.online_after_enable) (void)(*host)->BringCpuOnline(cpu);
    if (op == SimOp::kTbufEnable) enabled_once = true;
    if (op == SimOp::kTbufDisable && enabled_once) disabled_after = true;
  });
  if (!server) {
    fmt::print(stderr, "xenbake-sim: {}\n", server.error().Describe());
    return cli::kExitFailure;
  }
  if (auto st = (*host)->StartRealtime(o.speed); !st) {
    fmt::print(stderr, "xenbake-sim: {}\n", st.error().Describe());
    return cli::kExitFailure;
  }
  if (!o.ready_path.empty()) WriteText(o.ready_path, o.host.shm_path + "\n");
  fmt::print(stderr, "xenbake-sim: ready: XENBAKE_SIM={} ({} CPUs, {} domains)\n", o.host.shm_path,
             (*host)->physinfo().nr_cpus, (*host)->Domains().size());

  const auto duration_ns = static_cast<uint64_t>(o.duration_s * 1e9);
  const timespec tick{0, 20'000'000};
  for (;;) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig > 0) break;
    if (o.exit_after_disable && disabled_after) break;
    if (duration_ns != 0 && (*host)->now_ns() >= duration_ns) break;
  }
  (*host)->Stop();
  (*server)->Stop();
  ::unlink(o.host.shm_path.c_str());

  int rc = cli::kExitOk;
  if (!o.produced_path.empty()) {
    (*host)->WithProducedLog([&](const ProducedLog* log) {
      if (auto st = log->WriteXentraceFile(o.produced_path); !st) {
        fmt::print(stderr, "xenbake-sim: {}\n", st.error().Describe());
        rc = cli::kExitFailure;
      }
    });
  }
  if (!WriteText(o.truth_path, TruthToJson((*host)->TruthSnapshot()).dump(2) + "\n"))
    rc = cli::kExitFailure;
  return rc;
}

struct CheckOptions {
  std::string capture, reference, truth;
  bool discarded_prefix = false;
};

int Check(const CheckOptions& o) {
  auto cmp = CompareCaptures(o.capture, o.reference, o.discarded_prefix);
  if (!cmp) {
    fmt::print(stderr, "xenbake-sim check: {}\n", cmp.error().Describe());
    return cli::kExitFailure;
  }
  std::vector<std::string> problems = cmp->problems;
  uint64_t dropped = 0, reported = 0;
  if (!o.truth.empty()) {
    std::ifstream in(o.truth);
    const nlohmann::json truth = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (truth.is_discarded()) {
      fmt::print(stderr, "xenbake-sim check: cannot parse {}\n", o.truth);
      return cli::kExitFailure;
    }
    dropped = truth.value("dropped", uint64_t{0});
    reported = truth.value("dropped_reported", uint64_t{0});
    uint64_t cleared_or_pending = 0;
    for (const auto& c : truth["cpus"])
      cleared_or_pending +=
          c.value("dropped_cleared", uint64_t{0}) + c.value("pending_lost", uint64_t{0});
    if (cmp->lost_reported != reported)
      problems.push_back(
          fmt::format("LOST_RECORDS in the capture count {}, the simulator reported {}",
                      cmp->lost_reported, reported));
    if (reported + cleared_or_pending != dropped)
      problems.push_back(fmt::format("simulator dropped {} but reported {} and forgot {}", dropped,
                                     reported, cleared_or_pending));
  }
  if (cmp->lost_reported != cmp->lost_in_reference)
    problems.push_back(
        fmt::format("LOST_RECORDS in the capture count {}, the same stretch of the "
                    "reference {}",
                    cmp->lost_reported, cmp->lost_in_reference));
  fmt::print("records matched: {} (reference records before the capture began: {})\n",
             cmp->records_compared, cmp->records_discarded);
  for (const auto& [cpu, n] : cmp->records_per_cpu)
    fmt::print("  cpu {}: {} records, starting {}\n", cpu, n, cmp->first_events[cpu]);
  fmt::print("LOST_RECORDS records: {} reporting {} lost (simulator dropped {}, reported {})\n",
             cmp->lost_records, cmp->lost_reported, dropped, reported);
  for (const std::string& p : problems) fmt::print("PROBLEM: {}\n", p);
  fmt::print("{}\n",
             problems.empty() ? "OK: the capture holds exactly what was produced" : "FAILED");
  return problems.empty() ? cli::kExitOk : cli::kExitFailure;
}

struct StudyOptions {
  std::string svg_path = "overflow.svg";
  std::string table_path = "-";
};

int Study(const StudyOptions& o) {
  const std::vector<OverflowPoint> points = RunOverflowStudy(OverflowStudyConfig{});
  size_t disagree = 0;
  for (const OverflowPoint& p : points) disagree += p.agrees() ? 0 : 1;
  if (!WriteText(o.table_path, OverflowTableMarkdown(points))) return cli::kExitFailure;
  if (!o.svg_path.empty() && !WriteText(o.svg_path, OverflowSvg(points))) return cli::kExitFailure;
  fmt::print(stderr, "{} points, {} disagree with the bound\n", points.size(), disagree);
  return disagree == 0 ? cli::kExitOk : cli::kExitFailure;
}

}  // namespace

int SimMain(int argc, char** argv) {
  CLI::App app{
      "A simulated Xen host for trace consumers\n\n"
      "run: a workload (or the replay of a capture) in trace memory that unmodified consumers "
      "(xentrace, xenbaked --backend xen) read through the libxen shim (LD_PRELOAD="
      "libxenbake-shim.so XENBAKE_SIM=PATH); check: compare a consumer's capture with what was "
      "produced; overflow-study: loss against buffer size, record rate and drain latency."};
  cli::Configure(app, "xenbake-sim");
  app.footer(
      "\n" +
      cli::ExitStatusSection(
          {.ok = "run: stopped after --duration or a signal; check: the capture holds "
                 "exactly what was produced; overflow-study: every point within the bound",
           .failure = "the simulator could not start, an output could not be written, "
                      "check found problems, or a study point broke the bound",
           .usage = "a bad --mask or --online-after-enable",
           .partial = ""}) +
      "\nEXAMPLES\n"
      "  xenbake-sim run --shm /dev/shm/sim --cpus 4 --domains 6 --duration 30 --truth t.json\n"
      "  xenbake-sim check --capture out.xt --reference produced.xt --truth t.json\n"
      "  xenbake-sim overflow-study --svg overflow.svg\n");
  app.require_subcommand(1);
  RunOptions run_options;
  CLI::App* run = app.add_subcommand("run", "run a workload (or a replay) for the libxen shim");
  AddRunOptions(*run, run_options);
  CheckOptions check_options;
  CLI::App* check = app.add_subcommand("check", "compare a consumer's capture with the truth");
  check->add_option("--capture", check_options.capture, "the consumer's xentrace file")->required();
  check->add_option("--reference", check_options.reference, "xenbake-sim run --produced file")
      ->required();
  check->add_option("--truth", check_options.truth, "xenbake-sim run --truth file");
  check->add_flag("--discarded-prefix", check_options.discarded_prefix,
                  "the consumer discarded the buffers first (xentrace -D)");
  StudyOptions study_options;
  CLI::App* study = app.add_subcommand("overflow-study", "loss vs buffer size, rate, latency");
  study->add_option("--svg", study_options.svg_path, "plot to write ('' for none)");
  study->add_option("--table", study_options.table_path, "Markdown table ('-': stdout)");
  if (std::optional<int> status = cli::Parse(app, argc, argv, stdout, stderr)) return *status;
  if (run->parsed()) return Run(run_options);
  if (check->parsed()) return Check(check_options);
  return Study(study_options);
}

}  // namespace simulator
