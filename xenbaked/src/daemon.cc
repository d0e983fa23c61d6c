#include "xenbaked/daemon.h"

#include <fmt/ranges.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdlib>
#include <iterator>

#include "tracefmt/events.h"
#include "xenbaked/accounting.h"
#include "xenbaked/live_table.h"
#include "xenbaked/signals.h"

namespace xenbaked {

struct Daemon::Impl final : MergedRecordSink {
  Impl(boost::asio::io_context& io_context, Scheduler& sched, Hypervisor& hv, DaemonOptions opts,
       Logger& logger, std::FILE* out)
      : io(io_context),
        scheduler(sched),
        hypervisor(hv),
        options(std::move(opts)),
        log(logger),
        live(out != nullptr ? std::make_optional<LiveTerminal>(out) : std::nullopt) {}

  void Add(const tracefmt::MergedRecord& m) override { accounting->Add(m); }
  tracefmt::RunTaken TakeRun(const tracefmt::RunOffer& offer) override {
    return accounting->TakeRun(offer);
  }
  tracefmt::Status Start();
  void Tick();
  void Publish(bool final);
  void RefreshNames();
  void CheckCpuCoverage();
  void Stop();

  boost::asio::io_context& io;
  Scheduler& scheduler;
  Hypervisor& hypervisor;
  DaemonOptions options;
  Logger& log;
  std::optional<LiveTerminal> live;  // the live table's terminal, while it is there

  PhysInfo physinfo;
  std::unique_ptr<AccountingEngine> engine;
  std::unique_ptr<WindowHistory> history;
  std::unique_ptr<WindowedAccounting> accounting;
  std::unique_ptr<DrainLoop> loop;
  std::unique_ptr<SignalHandlers> signals;
  std::vector<std::unique_ptr<Publisher>> publishers;
  std::vector<std::function<void()>> before_final;
  std::unordered_map<uint32_t, std::string> names;
  AccountingSnapshot totals;
  std::vector<uint32_t> untraced_cpus;  // as of the last CheckCpuCoverage
  bool online_cpus_known = false;
  bool online_cpus_error_logged = false;
  uint64_t publish_errors = 0;  // failed publications and reopens, for the health report
  uint64_t tick_id = 0;
  uint64_t duration_id = 0;
  bool started = false;
  bool stopped = false;
  bool watchdog = false;
};

tracefmt::Status Daemon::Impl::Start() {
  tracefmt::Result<PhysInfo> info = hypervisor.GetPhysInfo();
  if (!info) return info.error();
  physinfo = *info;
  if (physinfo.cpu_khz == 0)
    return tracefmt::MakeError(tracefmt::ErrorCode::kUnsupported, "physinfo reports cpu_khz 0");

  engine = std::make_unique<AccountingEngine>(AccountingConfig{.cpu_khz = physinfo.cpu_khz});
  WindowConfig wc;
  wc.lengths_ns.clear();
  for (uint64_t s : options.windows_s) wc.lengths_ns.push_back(s * 1'000'000'000);
  wc.history = options.history;
  history = std::make_unique<WindowHistory>(wc);
  accounting =
      std::make_unique<WindowedAccounting>(*engine, *history, [this](const DomainTotals& d) {
        const uint64_t now = scheduler.UnixNowNs();
        for (auto& p : publishers) p->OnFinal(d, now);
      });

  DrainLoopOptions lo;
  lo.budget_bytes_per_cpu = options.budget_kib * 1024;
  lo.backstop_ns = options.backstop_ms * 1'000'000;
  lo.initial_contents = options.initial_contents;
  lo.disable_tracing_on_exit = options.disable_tracing_on_exit;
  lo.capture_path = options.capture_path;
  lo.producer_name = std::string("xenbaked ") + XENBAKED_VERSION;
  loop = std::make_unique<DrainLoop>(io, scheduler, hypervisor, *this, log, lo);

  TraceSetup setup;
  setup.pages_per_cpu = options.pages_per_cpu;
  setup.event_mask = tracefmt::ParseEventMask(options.event_mask).value_or(0);
  setup.cpu_mask = ParseCpuList(options.cpu_mask).value_or(std::vector<uint32_t>{});
  if (tracefmt::Status st = loop->Start(setup, physinfo); !st) return st;
  started = true;
  CheckCpuCoverage();

  signals = std::make_unique<SignalHandlers>(
      io,
      [this](int sig) {
        log.Notice("signal {}: final drain and exit", sig);
        Stop();
      },
      [this] {
        if (live && live->HungUp()) {
          live.reset();
          log.Notice("SIGHUP: the live table's terminal hung up: final drain and exit");
          Stop();
          return;
        }
        log.Notice("SIGHUP: reopening logs");
        for (auto& p : publishers)
          if (tracefmt::Status st = p->Reopen(); !st) {
            ++publish_errors;
            log.Error("{}: reopen: {}", p->name(), st.error().Describe());
          }
      });
  tick_id = scheduler.RunAfter(options.interval_ms * 1'000'000, [this] { Tick(); });
  if (options.duration_s > 0)
    duration_id = scheduler.RunAfter(static_cast<uint64_t>(options.duration_s * 1e9), [this] {
      duration_id = 0;
      log.Info("--duration reached: final drain and exit");
      Stop();
    });

  uint64_t usec = 0;
  watchdog = sd_watchdog_enabled(0, &usec) > 0;
  sd_notifyf(0, "READY=1\nSTATUS=draining %zu CPU(s), %u pages each (%s)",
             loop->buffers().rings.size(), loop->buffers().pages_per_cpu,
             std::string(hypervisor.name()).c_str());
  return {};
}

void Daemon::Impl::RefreshNames() {
  tracefmt::Result<std::vector<DomainInfo>> domains = hypervisor.ListDomains();
  if (!domains) {
    log.Debug("domain list: {}", domains.error().Describe());
    return;
  }
  names.clear();
  for (const DomainInfo& d : *domains) names[d.domid] = d.name;
}

namespace {
// Both lists ascend (OnlineCpus and TraceBuffers promise it): one merge-like pass.
std::vector<uint32_t> WithoutRing(const std::vector<uint32_t>& online,
                                  const std::vector<CpuRing>& rings) {
  std::vector<uint32_t> with_ring;
  for (const CpuRing& r : rings) with_ring.push_back(r.cpu());
  std::vector<uint32_t> out;
  std::set_difference(online.begin(), online.end(), with_ring.begin(), with_ring.end(),
                      std::back_inserter(out));
  return out;
}
}  // namespace

// CPUs come online at any time (CPU hotplug); each check compares the online CPUs with the mapped
// rings and says so, once per change, when a CPU is running without a buffer.
void Daemon::Impl::CheckCpuCoverage() {
  tracefmt::Result<std::vector<uint32_t>> online = hypervisor.OnlineCpus();
  if (!online) {
    if (!online_cpus_error_logged)
      log.Notice(
          "cannot list the online CPUs ({}): a CPU brought online after the trace buffers "
          "were allocated would go unnoticed",
          online.error().Describe());
    online_cpus_error_logged = true;
    online_cpus_known = false;
    return;
  }
  online_cpus_known = true;
  std::vector<uint32_t> untraced = WithoutRing(*online, loop->buffers().rings);
  if (untraced == untraced_cpus) return;
  if (untraced.empty())
    log.Notice("every online CPU has a trace buffer again");
  else
    log.Warn(
        "CPU(s) {} online without a trace buffer: Xen allocates the buffers once, for the "
        "CPUs online at that moment, and drops these CPUs' records without counting them, so "
        "their time is not accounted. Allocate the buffers while every CPU is online "
        "(tbuf_size= on Xen's command line)",
        fmt::join(untraced, ","));
  untraced_cpus = std::move(untraced);
}

void Daemon::Impl::Publish(bool final) {
  // The last drain is in: activity since each CPU's last scheduler record is charged now.
  if (final) engine->EndOfInput();
  accounting->Flush();
  totals = history->totals();
  RefreshNames();
  CheckCpuCoverage();
  DaemonHealth health = loop->SampleHealth();
  health.untraced_cpus = untraced_cpus;
  health.online_cpus_known = online_cpus_known;
  health.publish_errors = publish_errors;
  const publish::PublishView view{.totals = totals,
                                  .windows = *history,
                                  .health = health,
                                  .names = names,
                                  .monotonic_ns = scheduler.NowNs(),
                                  .realtime_ns = scheduler.UnixNowNs(),
                                  .period_ns = options.interval_ms * 1'000'000};
  for (auto& p : publishers) {
    tracefmt::Status st = final ? p->Close(view) : p->Publish(view);
    if (!st) {
      // Counted at once: the publishers after this one (the API, metrics) already show it.
      health.publish_errors = ++publish_errors;
      log.Warn("{}: {}", p->name(), st.error().Describe());
    }
  }
  // Every destroyed domain has now been published (its final record went out when it died, and
  // the windows keep it until they close): the engine lets it go and reuses its slot, so memory
  // follows the domains alive, not every domain a long-running host ever created.
  engine->ForgetDestroyed();
  if (live) {
    const Window* w = history->length_count() > 0 && !history->windows(0).empty()
                          ? &history->windows(0).back()
                          : nullptr;
    if (!live->Draw(RenderLiveTable(w, totals, health, names, live->Size()))) {
      // Nobody is watching any more (a hang-up whose SIGHUP went elsewhere): end as on SIGHUP.
      live.reset();
      if (!final) {
        log.Notice("the live table's terminal is gone: final drain and exit");
        boost::asio::post(io, [this] { Stop(); });
      }
    }
  }
  if (watchdog) sd_notify(0, "WATCHDOG=1");
  sd_notifyf(0, "STATUS=%llu records, %llu lost, %zu domains",
             static_cast<unsigned long long>(health.records),
             static_cast<unsigned long long>(health.lost_records), totals.domains.size());
}

void Daemon::Impl::Tick() {
  tick_id = 0;
  if (stopped) return;
  Publish(false);
  tick_id = scheduler.RunAfter(options.interval_ms * 1'000'000, [this] { Tick(); });
}

void Daemon::Impl::Stop() {
  if (stopped) return;
  stopped = true;
  sd_notify(0, "STOPPING=1");
  if (tick_id) scheduler.Cancel(tick_id);
  if (duration_id) scheduler.Cancel(duration_id);
  tick_id = duration_id = 0;
  for (auto& hook : before_final) hook();
  if (started) {
    loop->Stop();
    Publish(true);  // closes the publishers with the final figures
  }
  if (signals) signals->Cancel();
}

Daemon::Daemon(boost::asio::io_context& io, Scheduler& scheduler, Hypervisor& hypervisor,
               DaemonOptions options, Logger& log, std::FILE* live_out)
    : impl_(std::make_unique<Impl>(io, scheduler, hypervisor, std::move(options), log, live_out)) {}
Daemon::~Daemon() {
  if (impl_->tick_id) impl_->scheduler.Cancel(impl_->tick_id);
  if (impl_->duration_id) impl_->scheduler.Cancel(impl_->duration_id);
}

void Daemon::AddPublisher(std::unique_ptr<Publisher> p) {
  impl_->publishers.push_back(std::move(p));
}
tracefmt::Status Daemon::Start() {
  return impl_->Start();
}
void Daemon::Stop() {
  impl_->Stop();
}
void Daemon::OnBeforeFinalDrain(std::function<void()> hook) {
  impl_->before_final.push_back(std::move(hook));
}
bool Daemon::stopped() const {
  return impl_->stopped;
}
const DrainLoop& Daemon::loop() const {
  return *impl_->loop;
}
const AccountingEngine& Daemon::engine() const {
  return *impl_->engine;
}
const WindowHistory& Daemon::windows() const {
  return *impl_->history;
}
const AccountingSnapshot& Daemon::totals() const {
  return impl_->totals;
}
void Daemon::PublishNow() {
  impl_->Publish(false);
}

}  // namespace xenbaked
