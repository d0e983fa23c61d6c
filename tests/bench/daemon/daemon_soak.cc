// A long simulated soak of the whole daemon (drain, merge, accounting, windows, the accounting
// log and the shared-memory snapshot) on the in-process simulated host, with domain churn and
// domain-id reuse. Prints, every few simulated minutes, the process's resident memory and the
// sizes of the daemon's own state, so a reader sees whether anything grows with run time.
// Not a test (it takes minutes); run it by hand:
//
//   build/tests/bench/daemon/daemon_soak [simulated minutes, default 30] [rows, default 10]
//   build/tests/bench/daemon/daemon_soak 30 10 simulator-only   # the simulated host alone
//
// Deterministic stepping: simulated time and the daemon's clock advance together, 10 ms a step.
// The simulator keeps the truth of every domain it ever created (a few hundred bytes each), so
// part of any growth of the resident size is the simulator's; the `sim domains` column says how
// many it holds, and the simulator-only mode measures that growth on its own.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/publishers.h"
#include "xenbaked/simulated_hypervisor.h"

namespace xenbaked {
namespace {

constexpr uint64_t kStepNs = 10'000'000;
constexpr uint64_t kMinuteNs = 60'000'000'000;

double ResidentMiB() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0;
  uint64_t resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1048576.0;
}

// The simulated host alone, same workload, tracing off: how much of the resident growth is the
// simulator's own record of every domain it created.
int SimulatorOnly(simulator::SimulatedHost& host, uint64_t minutes, uint64_t rows) {
  std::printf("| sim min | RSS MiB (simulator alone) | sim domains |\n|---|---|---|\n");
  const uint64_t total_ns = minutes * kMinuteNs;
  const uint64_t row_every = std::max<uint64_t>(total_ns / std::max<uint64_t>(rows, 1), kStepNs);
  for (uint64_t t = kStepNs; t <= total_ns; t += kStepNs) {
    host.Advance(kStepNs);
    if (t % row_every != 0 && t != total_ns) continue;
    std::printf("| %.1f | %.1f | %zu |\n", static_cast<double>(t) / static_cast<double>(kMinuteNs),
                ResidentMiB(), host.TruthSnapshot().domains.size());
    std::fflush(stdout);
  }
  return 0;
}

int Soak(uint64_t minutes, uint64_t rows, bool simulator_only) {
  simulator::HostConfig config;
  config.workload.cpu_ids = {0, 1, 2, 3};
  config.workload.domains = 200;
  config.workload.vcpus_per_domain = 4;
  config.workload.hypercall_hz = 20'000;  // with the scheduler's records: ~150 k records/s
  config.workload.churn_hz = 25;          // 1,500 creations a minute ...
  config.workload.mean_lifetime_ns = 2'000'000'000;
  config.workload.first_new_domid = 0x7f00;  // ... and the rover wraps within the first minutes
  config.workload.seed = 21;
  auto host = simulator::SimulatedHost::Create(config);
  if (!host) {
    std::fprintf(stderr, "simulator: %s\n", host.error().Describe().c_str());
    return 1;
  }
  if (simulator_only) return SimulatorOnly(**host, minutes, rows);
  SimulatedHypervisor hv(**host);
  boost::asio::io_context io;
  ManualScheduler scheduler;
  Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "xenbaked-soak-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path dir = dir_template;
  DaemonOptions options;
  options.pages_per_cpu = 32;
  options.interval_ms = 1000;
  options.log_dir = (dir / "log").string();
  options.shm_name = "xenbaked-soak-" + std::to_string(::getpid());
  Daemon daemon(io, scheduler, hv, options, log);
  auto endpoints = AddPublishers(daemon, io, options, *hv.GetPhysInfo(), log,
                                 [&] { return scheduler.UnixNowNs(); });
  if (!endpoints) {
    std::fprintf(stderr, "publishers: %s\n", endpoints.error().Describe().c_str());
    return 1;
  }
  if (tracefmt::Status st = daemon.Start(); !st) {
    std::fprintf(stderr, "start: %s\n", st.error().Describe().c_str());
    return 1;
  }

  std::printf(
      "| sim min | records (M) | lost | RSS MiB | live doms | sim domains | engine slots | "
      "engine vCPUs | engine KiB | windows KiB | merger KiB | merger pending |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const uint64_t total_ns = minutes * kMinuteNs;
  const uint64_t row_every = std::max<uint64_t>(total_ns / std::max<uint64_t>(rows, 1), kStepNs);
  for (uint64_t t = kStepNs; t <= total_ns; t += kStepNs) {
    (*host)->Advance(kStepNs);
    scheduler.Advance(kStepNs);
    io.restart();
    io.poll();
    if (t % row_every != 0 && t != total_ns) continue;
    const DaemonHealth& h = daemon.loop().health();
    const EngineStateSizes e = daemon.engine().StateSizes();
    std::printf(
        "| %.1f | %.1f | %llu | %.1f | %zu | %zu | %zu | %zu | %.0f | %.0f | %.0f | %zu |\n",
        static_cast<double>(t) / static_cast<double>(kMinuteNs),
        static_cast<double>(daemon.engine().records()) / 1e6,
        static_cast<unsigned long long>(h.lost_records), ResidentMiB(), (*host)->Domains().size(),
        (*host)->TruthSnapshot().domains.size(), e.domain_slots, e.vcpu_states,
        static_cast<double>(e.bytes) / 1024.0,
        static_cast<double>(daemon.windows().ApproxBytes()) / 1024.0,
        static_cast<double>(daemon.loop().merger_bytes()) / 1024.0, h.merger_pending);
    std::fflush(stdout);
  }
  daemon.Stop();
  io.restart();
  io.poll();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return 0;
}

}  // namespace
}  // namespace xenbaked

int main(int argc, char** argv) {
  const uint64_t minutes = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 30;
  const uint64_t rows = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10;
  const bool simulator_only = argc > 3 && std::string(argv[3]) == "simulator-only";
  return xenbaked::Soak(minutes == 0 ? 1 : minutes, rows, simulator_only);
}
