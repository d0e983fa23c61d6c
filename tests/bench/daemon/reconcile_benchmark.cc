// The cost of one reconciliation with the hypervisor's cpu_time on a host of 1,000 domains × 4
// vCPUs: reading every vCPU's cpu_time (the simulated host's truth, or XenHypervisor — one
// XEN_DOMCTL_getvcpuinfo per vCPU — against the libxen shim) and the arithmetic
// (Reconciler::Update on a real snapshot of the engine after 2 s of simulated time).
//
// The XenHypervisor case runs when the binary runs under the shim, against a xenbake-sim of the
// same shape (docs/performance.md has the command lines):
//   xenbake-sim run --shm /dev/shm/rb --cpus 8 --domains 1000 --vcpus 4 --ready-file ... &
//   XENBAKE_SIM=/dev/shm/rb LD_PRELOAD=libxenbake-shim.so reconcile_benchmark
#include <benchmark/benchmark.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>

#include "simulator/simulated_host.h"
#include "xenbaked/accounting.h"
#include "xenbaked/drain_loop.h"
#include "xenbaked/reconcile.h"
#include "xenbaked/simulated_hypervisor.h"
#include "xenbaked/xen_hypervisor.h"

namespace xenbaked {
namespace {

constexpr uint32_t kDomains = 1000;
constexpr uint32_t kVcpus = 4;

class EngineSink final : public MergedRecordSink {
 public:
  explicit EngineSink(AccountingEngine& engine) : engine_(engine) {}
  void Add(const tracefmt::MergedRecord& m) override { engine_.Add(m); }
  tracefmt::RunTaken TakeRun(const tracefmt::RunOffer& offer) override {
    return engine_.TakeRun(offer);
  }

 private:
  AccountingEngine& engine_;
};

// A simulated host of 1,000 domains × 4 vCPUs on 8 CPUs, traced for 2 s: its snapshot names
// every vCPU, as the daemon's would.
struct Host {
  std::unique_ptr<simulator::SimulatedHost> host;
  std::unique_ptr<SimulatedHypervisor> hv;
  AccountingSnapshot snapshot;

  Host() {
    simulator::HostConfig config;
    config.workload.cpu_ids = {0, 1, 2, 3, 4, 5, 6, 7};
    config.workload.domains = kDomains;
    config.workload.vcpus_per_domain = kVcpus;
    config.workload.seed = 5;
    auto created = simulator::SimulatedHost::Create(config);
    host = std::move(*created);
    hv = std::make_unique<SimulatedHypervisor>(*host);
    boost::asio::io_context io;
    ManualScheduler scheduler;
    Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
    AccountingEngine engine({.cpu_khz = hv->GetPhysInfo()->cpu_khz});
    EngineSink sink(engine);
    DrainLoop loop(io, scheduler, *hv, sink, log, {});
    TraceSetup setup;
    setup.pages_per_cpu = 64;
    (void)loop.Start(setup, *hv->GetPhysInfo());
    for (int step = 0; step < 200; ++step) {
      host->Advance(10'000'000);
      loop.DrainNow();
    }
    snapshot = engine.Snapshot(engine.now_tsc());
    loop.Stop();
  }
};

Host& SharedHost() {
  static Host host;
  return host;
}

void BM_ReadVcpuCpuTimesSimulated(benchmark::State& state) {
  Host& h = SharedHost();
  size_t vcpus = 0;
  for (auto _ : state) {
    tracefmt::Result<VcpuCpuTimes> times = h.hv->ReadVcpuCpuTimes();
    vcpus = times ? times->vcpus.size() : 0;
    benchmark::DoNotOptimize(vcpus);
  }
  state.counters["vcpus"] = static_cast<double>(vcpus);
}
BENCHMARK(BM_ReadVcpuCpuTimesSimulated)->Unit(benchmark::kMicrosecond);

void BM_ReconcilerUpdate(benchmark::State& state) {
  Host& h = SharedHost();
  tracefmt::Result<VcpuCpuTimes> times = h.hv->ReadVcpuCpuTimes();
  if (!times) {
    state.SkipWithError(times.error().Describe().c_str());
    return;
  }
  Reconciler reconciler;
  reconciler.Update(h.snapshot, *times, 0);  // the baseline: every later call compares
  size_t compared = 0;
  for (auto _ : state) {
    compared = reconciler.Update(h.snapshot, *times, 1'000'000'000).host.vcpus;
    benchmark::DoNotOptimize(compared);
  }
  state.counters["vcpus_compared"] = static_cast<double>(compared);
}
BENCHMARK(BM_ReconcilerUpdate)->Unit(benchmark::kMicrosecond);

// libxenctrl's path, one domctl per vCPU; under the shim each is a round trip to xenbake-sim over
// a Unix socket, far dearer than a hypercall on Xen.
void BM_ReadVcpuCpuTimesXen(benchmark::State& state) {
  Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
  tracefmt::Result<std::unique_ptr<XenHypervisor>> hv = XenHypervisor::Open(log);
  if (!hv) {
    state.SkipWithError(hv.error().Describe().c_str());
    return;
  }
  size_t vcpus = 0;
  for (auto _ : state) {
    tracefmt::Result<VcpuCpuTimes> times = (*hv)->ReadVcpuCpuTimes();
    if (!times) {
      state.SkipWithError(times.error().Describe().c_str());
      return;
    }
    vcpus = times->vcpus.size();
  }
  state.counters["vcpus"] = static_cast<double>(vcpus);
}

const bool kXenRegistered = [] {
  if (XenHypervisor::Present())
    benchmark::RegisterBenchmark("BM_ReadVcpuCpuTimesXen", BM_ReadVcpuCpuTimesXen)
        ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
}  // namespace xenbaked

BENCHMARK_MAIN();
