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
#include "xenbaked/domain_names.h"
#include "xenbaked/live_table.h"
#include "xenbaked/reconcile.h"
#include "xenbaked/signals.h"
#include "xenbaked/tbuf_advice.h"

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
  void AdviseTbufSize(DaemonHealth& health);
  void CheckCpuCoverage();
  bool ReconcileDue(bool final) const;
  void Reconcile();
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
  DomainNameCache names;
  std::unique_ptr<TbufAdvisor> tbuf_advisor;
  uint64_t tbuf_advice_logged_ns = 0;  // monotonic; 0: never
  uint32_t tbuf_advice_logged_pages = 0;
  uint64_t run_lost_seen = 0;  // records lost during the run, as of the last publication
  AccountingSnapshot totals;
  std::vector<uint32_t> untraced_cpus;  // as of the last CheckCpuCoverage
  bool online_cpus_known = false;
  bool online_cpus_error_logged = false;
  std::unique_ptr<Reconciler> reconciler;  // null: not reconciling (disabled or unsupported)
  uint64_t last_reconcile_ns = 0;          // scheduler time of the previous read
  uint64_t reconcile_warned_ns = 0;        // when the last unexplained difference was logged
  uint64_t reconcile_unexplained_logged = 0;
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
  tbuf_advisor = std::make_unique<TbufAdvisor>(TbufAdviceConfig{}, loop->buffers().pages_per_cpu,
                                               XenMaxTbufPages(physinfo.max_cpu_id + 1));
  CheckCpuCoverage();
  if (options.reconcile_interval_ms > 0)
    reconciler = std::make_unique<Reconciler>(
        ReconcileConfig{.fallback_lag_ns = options.backstop_ms * 1'000'000});

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
        names.ForgetAll();  // picks up renames (xl rename), which nothing else follows
        log.Notice("SIGHUP: reopening logs, looking domain names up again");
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

// Only domains not named yet cost a lookup (xenbaked/domain_names.h): with no new domain a
// publication makes no xenstore call.
void Daemon::Impl::RefreshNames() {
  names.Update(totals.domains, scheduler.NowNs(), [this](uint32_t domid) {
    tracefmt::Result<std::string> name = hypervisor.DomainName(domid);
    if (!name) log.Debug("domain {} name: {}", domid, name.error().Describe());
    return name;
  });
}

// The buffer size the measured load needs, and when records are lost during the run, a log
// line that names Xen's boot option (at most every 10 minutes, or when the advice grows).
void Daemon::Impl::AdviseTbufSize(DaemonHealth& health) {
  tbuf_advisor->AddSample(health, scheduler.NowNs());
  health.tbuf_advice = tbuf_advisor->Advice();
  const uint64_t run_lost =
      health.lost_records - std::min(health.lost_records_at_start, health.lost_records);
  const bool new_loss = run_lost > run_lost_seen;
  const TbufAdvice& advice = health.tbuf_advice;
  if (!new_loss || !advice.ready) return;  // loss before the advice is ready waits for it
  run_lost_seen = run_lost;
  constexpr uint64_t kLogEveryNs = 600'000'000'000;
  const uint64_t now = scheduler.NowNs();
  if (tbuf_advice_logged_ns != 0 && now - tbuf_advice_logged_ns < kLogEveryNs &&
      advice.recommended_pages <= tbuf_advice_logged_pages)
    return;
  tbuf_advice_logged_ns = std::max<uint64_t>(now, 1);
  tbuf_advice_logged_pages = advice.recommended_pages;
  log.Warn("{} records lost during the run; {}", run_lost, DescribeTbufAdvice(advice));
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

bool Daemon::Impl::ReconcileDue(bool final) const {
  if (!reconciler) return false;
  if (final || reconciler->report().reads == 0) return true;
  return scheduler.NowNs() - last_reconcile_ns >= options.reconcile_interval_ms * 1'000'000;
}

// Reads Xen's clocks after the snapshot in `totals` (the bound in reconcile.h needs the trace's
// frontier before the read), so the caller drains and snapshots first.
void Daemon::Impl::Reconcile() {
  const uint64_t start = scheduler.NowNs();
  tracefmt::Result<VcpuCpuTimes> xen = hypervisor.ReadVcpuCpuTimes();
  const uint64_t end = scheduler.NowNs();
  if (!xen) {
    if (xen.error().code == tracefmt::ErrorCode::kUnsupported)
      log.Info("{}: the trace is not reconciled with the hypervisor's clocks",
               xen.error().Describe());
    else
      log.Notice(
          "reading the vCPUs' cpu_time failed ({}): the trace is no longer reconciled "
          "with the hypervisor's clocks",
          xen.error().Describe());
    reconciler.reset();
    return;
  }
  const uint64_t period = reconciler->report().reads > 0 ? start - last_reconcile_ns : 0;
  last_reconcile_ns = start;
  const uint64_t unexplained_before = reconciler->report().unexplained_periods;
  reconciler->Update(totals, *xen, period);
  reconciler->set_read_ns(end - start);
  const ReconcileReport& r = reconciler->report();
  if (r.unexplained_periods == unexplained_before) return;
  // At most one line a minute; every period outside its bound is counted in the report.
  constexpr uint64_t kWarnEveryNs = 60'000'000'000;
  if (reconcile_warned_ns != 0 && end - reconcile_warned_ns < kWarnEveryNs) return;
  reconcile_warned_ns = end;
  for (const DomainReconcile& d : r.domains) {
    if (d.explained()) continue;
    log.Warn(
        "domain {}: the trace's running time differs from Xen's cpu_time by {:.3f} ms over the "
        "last {:.3f} s (trace {:.3f} ms, Xen {:.3f} ms), beyond what unknown time ({:.3f} ms) "
        "and the read lag explain (-{:.3f}/+{:.3f} ms); {} unexplained period(s) since start, "
        "{} logged",
        d.domid, static_cast<double>(d.error_ns()) / 1e6, static_cast<double>(r.period_ns) / 1e9,
        static_cast<double>(d.trace_running_ns) / 1e6, static_cast<double>(d.xen_cpu_ns) / 1e6,
        static_cast<double>(d.unknown_ns) / 1e6, static_cast<double>(d.bound_below_ns()) / 1e6,
        static_cast<double>(d.bound_above_ns() - d.unknown_ns) / 1e6, r.unexplained_periods,
        ++reconcile_unexplained_logged);
    break;  // one domain per line and minute: the API and metrics have the rest
  }
}

void Daemon::Impl::Publish(bool final) {
  const bool reconcile = ReconcileDue(final);
  // A fresh frontier just before the read keeps the lag (the floor of the comparison) small.
  if (reconcile && !final) loop->DrainNow();
  // The last drain is in: activity since each CPU's last scheduler record is charged now.
  if (final) engine->EndOfInput();
  accounting->Flush();
  totals = history->totals();
  if (reconcile) Reconcile();
  RefreshNames();
  CheckCpuCoverage();
  DaemonHealth health = loop->SampleHealth();
  AdviseTbufSize(health);
  health.untraced_cpus = untraced_cpus;
  health.online_cpus_known = online_cpus_known;
  health.publish_errors = publish_errors;
  const publish::PublishView view{.totals = totals,
                                  .windows = *history,
                                  .health = health,
                                  .names = names.names(),
                                  .monotonic_ns = scheduler.NowNs(),
                                  .realtime_ns = scheduler.UnixNowNs(),
                                  .period_ns = options.interval_ms * 1'000'000,
                                  .reconcile = reconciler ? &reconciler->report() : nullptr};
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
    if (!live->Draw(RenderLiveTable(w, totals, health, names.names(), live->Size(),
                                    reconciler ? &reconciler->report() : nullptr))) {
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
