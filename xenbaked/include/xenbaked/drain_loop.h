// xenbaked/drain_loop.h — the daemon's heart: drain every CPU's trace buffer, merge by TSC, feed
// the accounting, optionally keep a raw capture. One event-loop thread (Boost.Asio).
//
// Wakes come from three places, counted apart in DaemonHealth:
//   - the trace interrupt (the hypervisor's event fd: a buffer crossed half full);
//   - the backstop timer, for CPUs that never reach half full (an idle CPU never interrupts);
//   - a re-post, when a pass stopped at a CPU's per-pass byte budget with work left — so one busy
//     CPU cannot starve the others, and other handlers (signals, clients) get a turn between.
// Each pass drains every CPU: read prod (acquire), copy the window into the merger's buffer and
// check and walk it there (shared memory is read once: another dom0 process may write it
// meanwhile), publish cons (release). Drain latency is the time from the wake to the pass's last
// cons published; a backlog that takes several passes counts from the original wake. The wake is
// when the interrupt arrived (noted by a WakeWatch thread, so time spent behind other handlers
// on the loop counts) or when the backstop timer fell due; DaemonHealth splits it into wake to
// pass start and the pass itself.
//
// Merging: each CPU's records are in TSC order; the LiveMerger holds them until a watermark says
// no CPU can still deliver an older one. The watermark after a pass is the minimum, over the CPUs
// that still have work left (budget reached) or that have records again when every ring is looked
// at once more after the pass, of the newest TSC drained from that CPU — and, when every CPU was
// drained empty and stayed so, the newest TSC drained anywhere. Why that is safe: a CPU that is
// empty at the second look holds nothing older than a record already drained, except one being
// written at the very moment of that look (Xen stamps the TSC, writes the record, then publishes
// prod, with interrupts off: a window of well under a microsecond). The second look matters
// because dom0 is a guest: the daemon's vCPU can be descheduled between two CPUs of a pass for
// seconds on a loaded host, and the CPU drained first meanwhile gets records older than those the
// next CPU gives. A record that still comes late (that tiny window, or TSCs skewed between CPUs)
// is accounted, just after newer ones: it is counted as late in DaemonHealth::late_records rather
// than silently reordered.
//
//   DrainLoop loop(io, scheduler, hypervisor, sink, log, options);
//   if (auto st = loop.Start(setup, physinfo); !st) die(st.error().Describe());
//   io.run();          // until loop.Stop() (SIGTERM, --duration) returns after the final drain
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "tracefmt/merge.h"
#include "tracefmt/result.h"
#include "xenbaked/health.h"
#include "xenbaked/hypervisor.h"
#include "xenbaked/log.h"
#include "xenbaked/scheduler.h"

namespace boost::asio {
class io_context;
}

namespace xenbaked {

// What to do with the records already in the buffers when the daemon starts (on real Xen with
// tbuf_size= on its command line they are full, from boot, beginning with WRAP and LOST records).
enum class InitialContents : uint8_t { kDiscard, kAccount };

// Where merged records go: the accounting engine in the daemon, a counter in tests.
class MergedRecordSink {
 public:
  virtual ~MergedRecordSink() = default;
  virtual void Add(const tracefmt::MergedRecord& m) = 0;
  // The loop offers merged records left in the merger's buffers (valid for the call): the head
  // of `offer` is the next record in merged order, and a sink may take records after it on the
  // same CPU as one run (tracefmt::LiveMerger::EmitRunsUpTo), so the accounting pays one call
  // per run rather than one per record. This default decodes the head alone and hands it to Add.
  virtual tracefmt::RunTaken TakeRun(const tracefmt::RunOffer& offer);
};

struct DrainLoopOptions {
  uint32_t budget_bytes_per_cpu = 1u << 20;  // per pass; one record always goes (progress)
  uint64_t backstop_ns = 100'000'000;        // 0: no backstop timer
  InitialContents initial_contents = InitialContents::kDiscard;
  bool disable_tracing_on_exit = true;
  std::string capture_path;                // empty: no raw capture
  std::string producer_name = "xenbaked";  // written to the capture's sidecar
  uint32_t anomaly_log_burst = 5;          // log lines per interval; every one is counted
  uint64_t anomaly_log_interval_ns = 10'000'000'000;
};

class DrainLoop {
 public:
  DrainLoop(boost::asio::io_context& io, Scheduler& scheduler, Hypervisor& hypervisor,
            MergedRecordSink& sink, Logger& log, DrainLoopOptions options);
  ~DrainLoop();
  DrainLoop(const DrainLoop&) = delete;
  DrainLoop& operator=(const DrainLoop&) = delete;

  // Enables tracing and maps the buffers, deals with their initial contents, opens the capture,
  // then waits for the interrupt and arms the backstop. Errors here are start-up errors.
  tracefmt::Status Start(const TraceSetup& setup, const PhysInfo& physinfo);

  // The final drain: disables tracing (if so configured), drains every CPU to empty regardless of
  // the budget, hands every held record to the sink, gives back the trace masks Start changed
  // (the event mask as found; the CPU mask as Xen's default, every CPU, since Xen cannot report
  // it), flushes and closes the capture, and stops waiting, so io.run() returns once nothing
  // else is pending. Idempotent. Start failing after tracing was enabled, and a loop destroyed
  // without Stop, disable tracing (if so configured) and give the masks back too.
  void Stop();
  bool stopped() const;

  // One pass right now, as if the backstop had fired (tests, benchmarks).
  void DrainNow();

  // Health as of now: refreshes uptime and records/s (rate since the previous call).
  const DaemonHealth& SampleHealth();
  const DaemonHealth& health() const;
  const TraceBuffers& buffers() const;
  uint64_t watermark_tsc() const;
  // Bytes the merger keeps allocated for records held back by the watermark (memory reports).
  size_t merger_bytes() const;
  // Tests: blocks until the interrupt's arrival has been noted (WakeWatch), so a test can then
  // keep the loop busy and see that wait counted.
  void WaitForInterruptStampForTesting();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xenbaked
