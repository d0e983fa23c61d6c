// xenbaked::Main: options, the output locks, process set-up, the backend (Xen, or the simulator
// when there is no hypervisor), the publishers, then the event loop until SIGTERM/SIGINT or
// --duration.
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <numeric>

#include "cli/exit_status.h"
#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/instance_lock.h"
#include "xenbaked/options.h"
#include "xenbaked/options_exit.h"
#include "xenbaked/publishers.h"
#include "xenbaked/simulated_hypervisor.h"
#include "xenbaked/xen_hypervisor.h"

namespace xenbaked {
namespace {

// Optional hardening of the loop's timing: every failure is logged and ignored (the daemon works
// without, only with more jitter).
void SetUpProcess(const DaemonOptions& o, Logger& log) {
  if (o.lock_memory && ::mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    log.Warn("mlockall: {}", tracefmt::MakeSystemError("mlockall").Describe());
  if (o.nice != 0 && ::setpriority(PRIO_PROCESS, 0, o.nice) != 0)
    log.Warn("setpriority: {}", tracefmt::MakeSystemError("setpriority").Describe());
  if (o.rt_priority > 0) {
    sched_param p{};
    p.sched_priority = o.rt_priority;
    if (::sched_setscheduler(0, SCHED_FIFO, &p) != 0)
      log.Warn("SCHED_FIFO: {}", tracefmt::MakeSystemError("sched_setscheduler").Describe());
  }
}

uint64_t RealtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

simulator::HostConfig SimulatedHostConfig(const SimulateOptions& s) {
  simulator::HostConfig config;
  config.workload.seed = s.seed;
  config.workload.cpu_ids.resize(s.cpus);
  std::iota(config.workload.cpu_ids.begin(), config.workload.cpu_ids.end(), 0u);
  config.workload.domains = s.domains;
  config.workload.vcpus_per_domain = s.vcpus;
  config.workload.churn_hz = s.churn_hz;
  return config;
}

}  // namespace

int Main(int argc, char** argv) {
  DaemonOptions options;
  try {
    options = ParseOptions(argc, argv);
  } catch (const OptionsExit& e) {
    return e.code;
  }
  Logger log(options.log_level, std::getenv("JOURNAL_STREAM") != nullptr);
  for (const std::string& warning : OptionWarnings(options)) log.Warn("{}", warning);
  for (const std::string& notice : OptionNotices(options, ::geteuid() == 0))
    log.Notice("{}", notice);
  // Before anything at an output path is unlinked or replaced: one daemon per set of paths.
  if (tracefmt::Status st = EnsureOutputDirectories(options); !st) {
    log.Error("{}", st.error().Describe());
    return cli::kExitFailure;
  }
  tracefmt::Result<std::vector<InstanceLock>> locks = LockOutputs(options);
  if (!locks) {
    log.Error("{}", locks.error().Describe());
    return cli::kExitFailure;
  }
  SetUpProcess(options, log);

  boost::asio::io_context io;
  AsioScheduler scheduler(io);
  std::unique_ptr<simulator::SimulatedHost> host;
  std::unique_ptr<Hypervisor> hypervisor;
  const bool use_xen =
      options.backend == "xen" || (options.backend == "auto" && XenHypervisor::Present());
  if (use_xen) {
    auto xen = XenHypervisor::Open(log);
    if (!xen) {
      log.Error("{}", xen.error().Describe());
      return cli::kExitFailure;
    }
    hypervisor = std::move(*xen);
  } else {
    if (options.backend == "auto")
      log.Notice("no hypervisor here (/dev/xen/privcmd absent): running the built-in simulator");
    auto created = simulator::SimulatedHost::Create(SimulatedHostConfig(options.simulate));
    if (!created) {
      log.Error("simulator: {}", created.error().Describe());
      return cli::kExitFailure;
    }
    host = std::move(*created);
    hypervisor = std::make_unique<SimulatedHypervisor>(*host);
  }

  const bool live = !options.quiet && ::isatty(STDOUT_FILENO);
  Daemon daemon(io, scheduler, *hypervisor, options, log, live ? stdout : nullptr);
  if (host) daemon.OnBeforeFinalDrain([&host] { host->Stop(); });
  tracefmt::Result<PhysInfo> physinfo = hypervisor->GetPhysInfo();
  if (!physinfo) {
    log.Error("physinfo: {}", physinfo.error().Describe());
    return cli::kExitFailure;
  }
  tracefmt::Result<std::vector<std::string>> cpu_warnings =
      CheckCpuMask(options.cpu_mask, *physinfo);
  if (!cpu_warnings) {
    log.Error("{}", cpu_warnings.error().Describe());
    return cli::kExitUsage;
  }
  for (const std::string& warning : *cpu_warnings) log.Warn("{}", warning);
  if (auto endpoints = AddPublishers(daemon, io, options, *physinfo, log, RealtimeNs); !endpoints) {
    log.Error("{}", endpoints.error().Describe());
    return cli::kExitFailure;
  }
  if (tracefmt::Status st = daemon.Start(); !st) {
    log.Error("start-up: {}", st.error().Describe());
    return cli::kExitFailure;
  }
  if (host) {
    if (tracefmt::Status st = host->StartRealtime(options.simulate.speed); !st) {
      log.Error("simulator: {}", st.error().Describe());
      return cli::kExitFailure;
    }
  }
  io.run();

  const DaemonHealth& h = daemon.loop().health();
  log.Info(
      "exit: {} records drained on {} CPU(s), {} lost during the run (and {} before start), {} "
      "anomalies, {} late records, wakes irq {} timer {}, drain latency mean {:.1f} us max {:.1f} "
      "us, capture errors {}",
      h.records, h.cpus.size(), h.lost_records - h.lost_records_at_start, h.lost_records_at_start,
      h.anomalies, h.late_records, h.wakes_irq, h.wakes_timer, h.drain_latency.mean_ns() / 1e3,
      static_cast<double>(h.drain_latency.max_ns) / 1e3, h.capture_errors);
  return h.capture_errors == 0 ? cli::kExitOk : cli::kExitPartial;
}

}  // namespace xenbaked
