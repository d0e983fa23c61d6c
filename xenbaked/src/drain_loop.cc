#include "xenbaked/drain_loop.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <limits>
#include <optional>

#include "tracefmt/clock.h"
#include "tracefmt/events.h"
#include "tracefmt/ring.h"
#include "tracefmt/trace_file.h"
#include "xenbaked/wake_watch.h"

namespace xenbaked {
namespace {
enum class Wake : uint8_t { kInterrupt, kTimer, kRepost, kDirect, kFinal };
constexpr uint32_t kNoBudget = std::numeric_limits<uint32_t>::max();

// The merger's run interface onto the sink's.
struct RunsToSink {
  MergedRecordSink& sink;
  tracefmt::RunTaken Take(const tracefmt::RunOffer& offer) { return sink.TakeRun(offer); }
};
}  // namespace

struct DrainLoop::Impl {
  Impl(boost::asio::io_context& io_context, Scheduler& sched, Hypervisor& hv,
       MergedRecordSink& record_sink, Logger& logger, DrainLoopOptions opts)
      : io(io_context),
        scheduler(sched),
        hypervisor(hv),
        sink(record_sink),
        log(logger),
        options(std::move(opts)),
        anomaly_limit(options.anomaly_log_burst, options.anomaly_log_interval_ns),
        capture_limit(options.anomaly_log_burst, options.anomaly_log_interval_ns) {}

  tracefmt::Status Start(const TraceSetup& setup, const PhysInfo& physinfo);
  void DiscardInitialContents();
  tracefmt::Status OpenCapture(const PhysInfo& physinfo, uint32_t event_mask);
  void WaitForInterrupt();
  void ArmBackstop();
  void Pass(Wake why, uint64_t wake_ns, uint32_t budget);
  // Drains one CPU; returns true when work is left for another pass.
  bool DrainCpu(size_t index, uint32_t budget);
  void Capture(uint32_t cpu, std::span<const std::byte> run);
  // What the record walk of one run found, for CommitRun: the records to merge (WRAP padding
  // excluded), the newest TSC among them, and whether WRAP padding (never merged) lies in the run.
  struct RunScan {
    size_t records = 0;
    uint64_t last_tsc = 0;
    bool wrap = false;
  };
  // Holds a drained run in the merger: the run is the merger's own copy of the ring's bytes,
  // already checked and walked there (DrainRingCopy), so it is held as it lies, less its padding.
  void CommitRun(uint32_t cpu, std::span<std::byte> run, const RunScan& scan);
  void NoteAnomaly(CpuHealth& cpu, tracefmt::RingAnomaly anomaly, uint32_t skipped);
  void Emit(uint64_t watermark);
  void Stop();
  void SampleTotals();
  // Gives the host's trace masks back as this run found them (what it changed only). Idempotent.
  void RestoreMasks();
  // Start failed, or the loop goes away without Stop, after tracing was enabled: tracing off
  // (when so configured) and the masks given back; no drain, no sink.
  void ReleaseTracing();

  boost::asio::io_context& io;
  Scheduler& scheduler;
  Hypervisor& hypervisor;
  MergedRecordSink& sink;
  Logger& log;
  DrainLoopOptions options;
  RateLimit anomaly_limit;
  RateLimit capture_limit;

  TraceBuffers buffers;
  tracefmt::LiveMerger merger;
  std::optional<boost::asio::posix::stream_descriptor> event;
  // Notes when the interrupt's fd became readable; after `event`, so it goes first (it watches
  // the fd `event` owns).
  std::unique_ptr<WakeWatch> wake_watch;
  uint64_t backstop_due_ns = 0;  // when the armed backstop timer falls due: its wake
  std::optional<tracefmt::TraceFileWriter> capture;
  uint64_t backstop_id = 0;
  bool started = false;
  bool stopped = false;
  bool tracing_enabled = false;  // by this loop, and not yet released by Stop or ReleaseTracing
  // The masks this run changed, as it found them, to restore at exit. Xen cannot report its CPU
  // mask: what is restored for it is Xen's default, every CPU.
  struct MasksFound {
    bool event = false;
    uint32_t event_mask = 0;
    bool cpus = false;
  };
  MasksFound masks_found;
  bool repost_pending = false;
  uint64_t watermark = 0;   // everything at or below it has gone to the sink
  uint64_t newest_tsc = 0;  // newest TSC drained from any CPU
  DaemonHealth health;
  // Per CPU, for telling loss before the daemon started from loss during its run: bytes of the
  // initial contents still to drain (kept with --initial-contents=account), and whether the
  // first record the hypervisor writes after them is still to come (with a buffer full since
  // boot, that is the TRC_LOST_RECORDS report of everything lost until the daemon made room).
  struct StartState {
    uint32_t initial_left = 0;
    bool first_write_pending = true;
  };
  std::vector<StartState> start_state;
  uint64_t rate_last_ns = 0;
  uint64_t rate_last_records = 0;
  uint64_t interval_latency_max_ns = 0;  // worst drain latency since the last SampleHealth
  // Handlers left on the io_context after the loop is gone check this before touching it.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

tracefmt::Status DrainLoop::Impl::Start(const TraceSetup& setup, const PhysInfo& physinfo) {
  if (started) return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument, "started twice");
  started = true;
  if (setup.event_mask != 0) {
    tracefmt::Result<uint32_t> found = hypervisor.GetEventMask();
    masks_found.event_mask = found ? *found : tracefmt::ev::kAll;
    if (!found)
      log.Warn(
          "cannot read the trace event mask in force ({}): Xen's default, every class ({:#010x}), "
          "is restored at exit",
          found.error().Describe(), tracefmt::ev::kAll);
    masks_found.event = true;
  }
  masks_found.cpus = !setup.cpu_mask.empty();
  tracefmt::Result<TraceBuffers> mapped = hypervisor.EnableTracing(setup);
  if (!mapped) {
    // The masks may be set already (Xen's order), and tracing may be another consumer's: give
    // the masks back, leave tracing as it is.
    RestoreMasks();
    return mapped.error();
  }
  tracing_enabled = true;
  buffers = std::move(*mapped);
  if (buffers.rings.empty()) {
    ReleaseTracing();
    return tracefmt::MakeError(tracefmt::ErrorCode::kNotFound, "no CPU has a trace buffer");
  }

  health.backend = std::string(hypervisor.name());
  health.version = XENBAKED_VERSION;
  health.start_unix_ns = scheduler.UnixNowNs();
  health.cpu_khz = physinfo.cpu_khz;
  health.pages_per_cpu = buffers.pages_per_cpu;
  health.event_mask = setup.event_mask;
  for (const CpuRing& ring : buffers.rings) {
    health.cpus.push_back(CpuHealth{.cpu = ring.cpu(), .buffer_bytes = ring.data_size()});
    StartState& st = start_state.emplace_back();
    const uint32_t cons = ring.LoadCons();
    const uint32_t prod = ring.LoadProd();
    if (options.initial_contents == InitialContents::kAccount &&
        tracefmt::CheckRingPointers(ring.data_size(), cons, prod) == tracefmt::RingAnomaly::kNone)
      st.initial_left = tracefmt::RingUnconsumed(ring.data_size(), cons, prod);
  }
  rate_last_ns = scheduler.NowNs();

  if (!options.capture_path.empty()) {
    if (tracefmt::Status st = OpenCapture(physinfo, setup.event_mask); !st) {
      ReleaseTracing();
      return st;
    }
  }
  if (options.initial_contents == InitialContents::kDiscard) DiscardInitialContents();

  WaitForInterrupt();
  ArmBackstop();
  // What is already there (initial contents kept, or records since the discard) goes now rather
  // than at the first wake.
  boost::asio::post(io, [this, alive = std::weak_ptr<bool>(alive)] {
    if (!alive.expired()) Pass(Wake::kDirect, scheduler.NowNs(), options.budget_bytes_per_cpu);
  });
  log.Info("tracing on {} CPU(s), {} pages each, backend {}", buffers.rings.size(),
           buffers.pages_per_cpu, health.backend);
  return {};
}

void DrainLoop::Impl::DiscardInitialContents() {
  for (size_t i = 0; i < buffers.rings.size(); ++i) {
    const CpuRing& ring = buffers.rings[i];
    const uint32_t prod = ring.LoadProd();
    const uint32_t cons = ring.LoadCons();
    const tracefmt::RingAnomaly anomaly = tracefmt::CheckRingPointers(ring.data_size(), cons, prod);
    if (anomaly == tracefmt::RingAnomaly::kProdMisaligned ||
        anomaly == tracefmt::RingAnomaly::kProdOutOfRange) {
      NoteAnomaly(health.cpus[i], anomaly, 0);  // never publish a bogus prod as cons
      continue;
    }
    if (anomaly == tracefmt::RingAnomaly::kNone)
      health.initial_bytes_discarded += tracefmt::RingUnconsumed(ring.data_size(), cons, prod);
    ring.StoreCons(prod);
  }
}

tracefmt::Status DrainLoop::Impl::OpenCapture(const PhysInfo& physinfo, uint32_t event_mask) {
  tracefmt::Result<tracefmt::TraceFileWriter> writer =
      tracefmt::TraceFileWriter::Create(options.capture_path);
  if (!writer) return writer.error();
  capture.emplace(std::move(*writer));
  health.capture_enabled = true;
  return tracefmt::WriteCaptureMeta(options.capture_path, {.cpu_khz = physinfo.cpu_khz,
                                                           .tbuf_pages = buffers.pages_per_cpu,
                                                           .event_mask = event_mask,
                                                           .producer = options.producer_name});
}

void DrainLoop::Impl::WaitForInterrupt() {
  if (!event) {
    const int fd = hypervisor.EventFd();
    if (fd < 0) return;  // a backend without an interrupt: the backstop does all the work
    // A duplicate: the descriptor object closes what it owns, the hypervisor keeps its own.
    const int dup_fd = ::dup(fd);
    if (dup_fd < 0) {
      log.Warn("cannot watch the trace interrupt ({}): backstop timer only",
               tracefmt::MakeSystemError("dup").Describe());
      return;
    }
    event.emplace(io, dup_fd);
    wake_watch = std::make_unique<WakeWatch>(dup_fd, scheduler);
    if (!wake_watch->running()) {
      log.Warn("cannot watch for the trace interrupt's arrival: its wait is timed from the drain");
      wake_watch.reset();
    }
  }
  event->async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [this, alive = std::weak_ptr<bool>(alive)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || stopped) return;
        const uint64_t handler_ns = scheduler.NowNs();
        // Acknowledge first: a crossing during the drain then notifies again.
        if (tracefmt::Status st = hypervisor.AckEvent(); !st)
          log.Warn("acknowledging the trace interrupt: {}", st.error().Describe());
        // The wake is when the interrupt arrived, not when the loop got round to it: the time
        // it waited behind other handlers is the drain's latency too.
        const std::optional<uint64_t> arrived =
            wake_watch ? wake_watch->Take() : std::optional<uint64_t>();
        const uint64_t wake_ns = std::min(handler_ns, arrived.value_or(handler_ns));
        Pass(Wake::kInterrupt, wake_ns, options.budget_bytes_per_cpu);
        if (!stopped) WaitForInterrupt();
      });
}

void DrainLoop::Impl::ArmBackstop() {
  if (options.backstop_ns == 0 || stopped) return;
  // The wake is the timer's due time: a handler that runs late (the loop busy elsewhere) counts
  // the delay in the drain's latency.
  backstop_due_ns = scheduler.NowNs() + options.backstop_ns;
  backstop_id = scheduler.RunAfter(options.backstop_ns, [this] {
    backstop_id = 0;
    Pass(Wake::kTimer, std::min(backstop_due_ns, scheduler.NowNs()), options.budget_bytes_per_cpu);
    ArmBackstop();
  });
}

void DrainLoop::Impl::Pass(Wake why, uint64_t wake_ns, uint32_t budget) {
  if (stopped && why != Wake::kFinal) return;
  switch (why) {
    case Wake::kInterrupt:
      ++health.wakes_irq;
      break;
    case Wake::kTimer:
      ++health.wakes_timer;
      break;
    case Wake::kRepost:
      ++health.wakes_repost;
      break;
    case Wake::kDirect:
    case Wake::kFinal:
      break;
  }
  ++health.passes;
  const uint64_t start_ns = scheduler.NowNs();
  if (why != Wake::kRepost && why != Wake::kFinal) {
    // A re-posted pass carries its backlog's original wake: its start says nothing new.
    const uint64_t waited = start_ns - std::min(wake_ns, start_ns);
    health.wake_to_drain_start.Add(waited);
    if (why == Wake::kInterrupt)
      health.irq_to_drain_max_ns = std::max(health.irq_to_drain_max_ns, waited);
  }
  bool work_left = false;
  uint64_t busy_bound = ~uint64_t{0};  // oldest "newest TSC" among CPUs with work left
  for (size_t i = 0; i < buffers.rings.size(); ++i) {
    const bool left = DrainCpu(i, budget);
    const uint64_t last = merger.last_tsc(buffers.rings[i].cpu());
    newest_tsc = std::max(newest_tsc, last);
    if (left) {
      work_left = true;
      busy_bound = std::min(busy_bound, last);
    }
  }
  // A CPU drained empty holds nothing older than the newest record drained anywhere only if it
  // stayed empty while the others were drained. dom0 is a guest too: the daemon's vCPU can be
  // descheduled in the middle of a pass (seconds, on a loaded host), and a CPU drained before
  // that has older records than the CPUs drained after. Look at every CPU again: one that has
  // records now is bounded by its own newest drained record, like a CPU with work left.
  for (const CpuRing& ring : buffers.rings) {
    const uint32_t cons = ring.LoadCons();
    const uint32_t prod = ring.LoadProd();
    if (prod != cons &&
        tracefmt::CheckRingPointers(ring.data_size(), cons, prod) == tracefmt::RingAnomaly::kNone)
      busy_bound = std::min(busy_bound, merger.last_tsc(ring.cpu()));
  }
  const uint64_t end_ns = scheduler.NowNs();
  health.drain_pass.Add(end_ns - start_ns);
  const uint64_t latency = end_ns - std::min(wake_ns, end_ns);
  health.drain_latency.Add(latency);
  interval_latency_max_ns = std::max(interval_latency_max_ns, latency);
  health.last_drain_unix_ns = scheduler.UnixNowNs();
  Emit(std::min(busy_bound, newest_tsc));
  if (work_left && !repost_pending && why != Wake::kFinal) {
    repost_pending = true;
    boost::asio::post(io, [this, wake_ns, alive = std::weak_ptr<bool>(alive)] {
      if (alive.expired()) return;
      repost_pending = false;
      Pass(Wake::kRepost, wake_ns, options.budget_bytes_per_cpu);
    });
  }
}

bool DrainLoop::Impl::DrainCpu(size_t index, uint32_t budget) {
  const CpuRing& ring = buffers.rings[index];
  CpuHealth& cpu = health.cpus[index];
  const uint32_t id = ring.cpu();
  const uint32_t prod_untrusted = ring.LoadProd();
  const uint32_t cons_untrusted = ring.LoadCons();
  if (prod_untrusted == cons_untrusted) {
    cpu.fill_bytes = 0;
    return false;
  }
  if (tracefmt::CheckRingPointers(ring.data_size(), cons_untrusted, prod_untrusted) ==
      tracefmt::RingAnomaly::kNone) {
    cpu.fill_bytes = tracefmt::RingUnconsumed(ring.data_size(), cons_untrusted, prod_untrusted);
    cpu.peak_fill_bytes = std::max(cpu.peak_fill_bytes, cpu.fill_bytes);
  }
  const uint64_t emitted_up_to = watermark;
  RunScan scan;
  // Shared memory is read once, by a copy straight into the merger's buffer for this CPU; the
  // records are checked and walked in that copy, and the capture and the merger get exactly the
  // bytes checked, whatever another dom0 process writes to the ring meanwhile.
  const tracefmt::RingDrain d = tracefmt::DrainRingCopy(
      ring.Data(), cons_untrusted, prod_untrusted, budget,
      [&](size_t bytes) { return merger.StageRecords(id, bytes); },
      [&](std::span<std::byte> run) {
        Capture(id, run);
        CommitRun(id, run, scan);
        scan = RunScan{};
      },
      [&](tracefmt::RecordRef rec) {
        const uint32_t event = rec.event();
        StartState& start = start_state[index];
        bool before_start = false;
        if (start.initial_left > 0) {
          before_start = true;
          start.initial_left -= std::min(start.initial_left, rec.SizeBytes());
        } else if (start.first_write_pending && event != tracefmt::ev::kWrapBuffer) {
          before_start = true;
          start.first_write_pending = false;
        }
        if (event == tracefmt::ev::kLostRecords && rec.extra_words() >= 1) [[unlikely]] {
          cpu.lost_records += rec.Extra(0);
          if (before_start) cpu.lost_records_at_start += rec.Extra(0);
        }
        // WRAP padding has no meaning for accounting and its TSC may be stale bytes (it fills
        // whatever was left at the end of the data area): kept in the raw capture, never merged,
        // so it cannot move a CPU's merge position.
        if (event == tracefmt::ev::kWrapBuffer) [[unlikely]] {
          scan.wrap = true;
          return;
        }
        ++scan.records;
        if (rec.has_tsc()) [[likely]] {
          const uint64_t tsc = rec.Tsc();
          scan.last_tsc = tsc;
          if (tsc < emitted_up_to && emitted_up_to != 0) ++health.late_records;
        }
      });
  if (d.new_cons != cons_untrusted) ring.StoreCons(d.new_cons);
  cpu.records += d.records;
  cpu.bytes += d.bytes_consumed;
  if (!d.ok()) NoteAnomaly(cpu, d.anomaly, d.bytes_skipped);
  if (d.bytes_left > 0) ++cpu.budget_hits;
  cpu.last_tsc = merger.last_tsc(id);
  return d.bytes_left > 0;
}

void DrainLoop::Impl::Capture(uint32_t cpu, std::span<const std::byte> run) {
  if (!capture) return;
  tracefmt::Status st = capture->WriteChunk(cpu, run);
  if (st) {
    health.capture_bytes += tracefmt::kChunkHeaderBytes + run.size();
    return;
  }
  // Counted, kept for health, logged at a bounded rate; draining goes on regardless.
  ++health.capture_errors;
  ++health.capture_chunks_lost;
  health.capture_last_error = st.error().Describe();
  if (capture_limit.Allow(scheduler.NowNs()))
    log.Error("raw capture {}: {} ({} chunk(s) lost so far)", options.capture_path,
              health.capture_last_error, health.capture_chunks_lost);
}

void DrainLoop::Impl::NoteAnomaly(CpuHealth& cpu, tracefmt::RingAnomaly anomaly, uint32_t skipped) {
  ++cpu.anomalies;
  cpu.bytes_skipped += skipped;
  if (anomaly_limit.Allow(scheduler.NowNs())) {
    ++health.anomalies_logged;
    log.Warn("cpu {}: ring anomaly {} ({} bytes skipped)", cpu.cpu,
             tracefmt::RingAnomalyName(anomaly), skipped);
  }
}

void DrainLoop::Impl::CommitRun(uint32_t cpu, std::span<std::byte> run, const RunScan& scan) {
  if (!scan.wrap) [[likely]] {
    merger.CommitStaged(cpu, run.size(), scan.records, scan.last_tsc);
    return;
  }
  // The run holds WRAP padding (once per lap of the buffer, at the end of the data area): the
  // records after it move down over it, in the copy, which is ours and was checked record by
  // record (the size test only keeps this walk inside the run whatever it is given).
  size_t kept = 0;
  for (size_t off = 0; off < run.size();) {
    const uint32_t header = tracefmt::Load32(run.data() + off);
    const size_t size = tracefmt::RecordBytesFromHeader(header);
    if (size > run.size() - off) [[unlikely]]
      break;
    if (tracefmt::RecordRef{header, run.data() + off}.event() != tracefmt::ev::kWrapBuffer) {
      if (kept != off) std::memmove(run.data() + kept, run.data() + off, size);
      kept += size;
    }
    off += size;
  }
  merger.CommitStaged(cpu, kept, scan.records, scan.last_tsc);
}

void DrainLoop::Impl::Emit(uint64_t up_to) {
  merger.EmitRunsUpTo(up_to, RunsToSink{sink});
  watermark = std::max(watermark, up_to);
}

void DrainLoop::Impl::Stop() {
  if (stopped || !started) {
    stopped = true;
    return;
  }
  if (options.disable_tracing_on_exit) {
    if (tracefmt::Status st = hypervisor.DisableTracing(); !st)
      log.Warn("disabling tracing: {}", st.error().Describe());
  }
  // Tracing is off (or we accept what arrives meanwhile): one unbounded pass empties every ring,
  // lower-numbered CPUs included (xentrace once lost their tail by stopping early).
  const uint64_t wake_ns = scheduler.NowNs();
  stopped = true;
  Pass(Wake::kFinal, wake_ns, kNoBudget);
  merger.EmitRunsUpTo(~uint64_t{0}, RunsToSink{sink});
  tracing_enabled = false;
  RestoreMasks();
  if (capture) {
    if (tracefmt::Status st = capture->Close(); !st) {
      ++health.capture_errors;
      health.capture_last_error = st.error().Describe();
      log.Error("closing raw capture {}: {}", options.capture_path, health.capture_last_error);
    }
    capture.reset();
  }
  if (backstop_id != 0) scheduler.Cancel(backstop_id);
  backstop_id = 0;
  wake_watch.reset();  // before the fd it watches is closed
  if (event) {
    boost::system::error_code ignored;
    event->cancel(ignored);
    event->close(ignored);
    event.reset();
  }
  SampleTotals();
}

void DrainLoop::Impl::RestoreMasks() {
  if (masks_found.event) {
    masks_found.event = false;
    if (tracefmt::Status st = hypervisor.SetEventMask(masks_found.event_mask); !st)
      log.Warn("restoring the trace event mask {:#010x}: {}", masks_found.event_mask,
               st.error().Describe());
    else
      log.Info("trace event mask restored to {:#010x}", masks_found.event_mask);
  }
  if (masks_found.cpus) {
    masks_found.cpus = false;
    if (tracefmt::Status st = hypervisor.SetCpuMask({}); !st)
      log.Warn("restoring the trace CPU mask: {}", st.error().Describe());
    else
      log.Info("trace CPU mask restored to every CPU (Xen's default: Xen cannot report a mask)");
  }
}

void DrainLoop::Impl::ReleaseTracing() {
  if (tracing_enabled && options.disable_tracing_on_exit) {
    if (tracefmt::Status st = hypervisor.DisableTracing(); !st)
      log.Warn("disabling tracing: {}", st.error().Describe());
  }
  tracing_enabled = false;
  RestoreMasks();
}

void DrainLoop::Impl::SampleTotals() {
  health.records = health.bytes = health.lost_records = health.anomalies = 0;
  health.lost_records_at_start = 0;
  for (const CpuHealth& cpu : health.cpus) {
    health.records += cpu.records;
    health.bytes += cpu.bytes;
    health.lost_records += cpu.lost_records;
    health.lost_records_at_start += cpu.lost_records_at_start;
    health.anomalies += cpu.anomalies;
  }
  health.merger_pending = merger.pending();
}

tracefmt::RunTaken MergedRecordSink::TakeRun(const tracefmt::RunOffer& offer) {
  const tracefmt::RecordRef head{tracefmt::Load32(offer.bytes.data()), offer.bytes.data()};
  tracefmt::MergedRecord m;
  m.cpu = offer.cpu;
  m.tsc = offer.tsc;
  head.DecodeTo(m.rec);
  Add(m);
  return tracefmt::RunTaken{.bytes = head.SizeBytes(), .records = 1, .last_tsc = offer.tsc};
}

DrainLoop::DrainLoop(boost::asio::io_context& io, Scheduler& scheduler, Hypervisor& hypervisor,
                     MergedRecordSink& sink, Logger& log, DrainLoopOptions options)
    : impl_(std::make_unique<Impl>(io, scheduler, hypervisor, sink, log, std::move(options))) {}

DrainLoop::~DrainLoop() {
  if (impl_->backstop_id != 0) impl_->scheduler.Cancel(impl_->backstop_id);
  // Gone without Stop (a fatal error after start-up): the host's tracing is still given back.
  impl_->ReleaseTracing();
}

tracefmt::Status DrainLoop::Start(const TraceSetup& setup, const PhysInfo& physinfo) {
  return impl_->Start(setup, physinfo);
}
void DrainLoop::Stop() {
  impl_->Stop();
}
bool DrainLoop::stopped() const {
  return impl_->stopped;
}
void DrainLoop::DrainNow() {
  impl_->Pass(Wake::kDirect, impl_->scheduler.NowNs(), impl_->options.budget_bytes_per_cpu);
}
const DaemonHealth& DrainLoop::health() const {
  return impl_->health;
}
const TraceBuffers& DrainLoop::buffers() const {
  return impl_->buffers;
}
uint64_t DrainLoop::watermark_tsc() const {
  return impl_->watermark;
}
size_t DrainLoop::merger_bytes() const {
  return impl_->merger.buffer_bytes();
}
void DrainLoop::WaitForInterruptStampForTesting() {
  if (impl_->wake_watch) impl_->wake_watch->WaitForStamp();
}

const DaemonHealth& DrainLoop::SampleHealth() {
  Impl& s = *impl_;
  s.SampleTotals();
  const uint64_t now = s.scheduler.NowNs();
  s.health.uptime_ns = s.scheduler.UnixNowNs() - s.health.start_unix_ns;
  if (now > s.rate_last_ns) {
    s.health.records_per_s = static_cast<double>(s.health.records - s.rate_last_records) * 1e9 /
                             static_cast<double>(now - s.rate_last_ns);
    s.rate_last_ns = now;
    s.rate_last_records = s.health.records;
  }
  s.health.drain_latency_interval_max_ns = s.interval_latency_max_ns;
  s.interval_latency_max_ns = 0;
  return s.health;
}

}  // namespace xenbaked
