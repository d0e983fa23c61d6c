// The daemon's CPU time per million records drained at steady state: a simulated host produces
// (untimed), the drain loop drains every CPU, merges by TSC and feeds the accounting engine and
// its windows (timed), exactly as the daemon wires them (runs of merged records, one call per
// run). Deterministic stepping; no sleeping, no threads.
// Target (issue 4): <= 15 ms of CPU per million records.
//
// Counters: items_per_second is records per second of CPU; ms_cpu_per_M_records is measured
// apart, with the thread's own CPU clock around each drain only, so it cannot pick up the
// simulator's time or the framework's pause bookkeeping.
#include <benchmark/benchmark.h>
#include <time.h>

#include <boost/asio/io_context.hpp>

#include "simulator/simulated_host.h"
#include "xenbaked/accounting.h"
#include "xenbaked/drain_loop.h"
#include "xenbaked/simulated_hypervisor.h"
#include "xenbaked/windows.h"

namespace xenbaked {
namespace {

// As the daemon's own sink: the batch goes to the windowed accounting whole.
class AccountingSink final : public MergedRecordSink {
 public:
  explicit AccountingSink(WindowedAccounting& acct) : acct_(acct) {}
  void Add(const tracefmt::MergedRecord& m) override { acct_.Add(m); }
  tracefmt::RunTaken TakeRun(const tracefmt::RunOffer& offer) override {
    return acct_.TakeRun(offer);
  }

 private:
  WindowedAccounting& acct_;
};

uint64_t ThreadCpuNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

void BM_DaemonDrainAndAccount(benchmark::State& state) {
  simulator::HostConfig config;
  config.workload.cpu_ids = {0, 1, 2, 3};
  config.workload.domains = static_cast<uint32_t>(state.range(0));
  config.workload.vcpus_per_domain = 2;
  config.workload.hypercall_hz = 200'000;  // a busy host: ~1 M records/s over 4 CPUs
  config.workload.seed = 11;
  auto host = simulator::SimulatedHost::Create(config);
  if (!host) {
    state.SkipWithError(host.error().Describe().c_str());
    return;
  }
  SimulatedHypervisor hv(**host);
  boost::asio::io_context io;
  ManualScheduler scheduler;
  Logger log(LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {}));
  AccountingEngine engine({.cpu_khz = hv.GetPhysInfo()->cpu_khz});
  WindowHistory history;
  WindowedAccounting acct(engine, history);
  AccountingSink sink(acct);
  DrainLoopOptions options;
  options.backstop_ns = 0;  // passes are driven below
  DrainLoop loop(io, scheduler, hv, sink, log, options);
  TraceSetup setup;
  setup.pages_per_cpu = 256;
  if (!loop.Start(setup, *hv.GetPhysInfo()).ok()) {
    state.SkipWithError("start");
    return;
  }
  constexpr uint64_t kStepNs = 20'000'000;
  for (int i = 0; i < 10; ++i) {  // warm up to steady state (domains known, windows allocated)
    (*host)->Advance(kStepNs);
    loop.DrainNow();
  }
  const uint64_t records_before = loop.SampleHealth().records;
  uint64_t drain_cpu_ns = 0;
  for (auto _ : state) {
    state.PauseTiming();
    (*host)->Advance(kStepNs);
    (*host)->AckNotification();
    state.ResumeTiming();
    const uint64_t t0 = ThreadCpuNs();
    loop.DrainNow();
    drain_cpu_ns += ThreadCpuNs() - t0;
  }
  const DaemonHealth& h = loop.SampleHealth();
  const uint64_t records = h.records - records_before;
  state.counters["records"] = static_cast<double>(records);
  state.counters["lost"] = static_cast<double>(h.lost_records);
  // Records per second of the timed CPU time (the framework divides by it).
  state.SetItemsProcessed(static_cast<int64_t>(records));
  // CPU ns per record is numerically ms of CPU per million records.
  state.counters["ms_cpu_per_M_records"] =
      records == 0 ? 0.0 : static_cast<double>(drain_cpu_ns) / static_cast<double>(records);
}
BENCHMARK(BM_DaemonDrainAndAccount)->Arg(8)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace xenbaked

BENCHMARK_MAIN();
