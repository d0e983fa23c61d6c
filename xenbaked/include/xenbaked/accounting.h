// xenbaked/accounting.h — the accounting engine: merged trace records in, per-domain and
// per-vCPU time out. The same engine runs live in the daemon and offline in xenbake-account.
//
// Per vCPU, a runstate machine driven by TRC_SCHED_RUNSTATE_CHANGE (old and new state are in the
// record, so every change both closes the interval in the old state and opens one in the new):
// time running, runnable (waiting for a CPU), blocked, offline. The switch records cross-check it
// and give the slice (`next_time`). Per domain, the sums plus dispatches, run slices, wakes,
// blocks, hypercalls, I/O records and the lost records attributed to it. Per physical CPU, the
// capture ratio: time accounted to some domain (idle included) over the time elapsed.
//
//   AccountingEngine engine({.cpu_khz = 2596120});
//   tracefmt::MergedRecord m;
//   while (merged.Next(m)) engine.Add(m);
//   AccountingSnapshot totals = engine.Snapshot(engine.now_tsc());
//
// Domain ids are reused by Xen after a domain is destroyed; each incarnation is its own
// `instance` and a reused id starts fresh. A destroyed domain's last totals are handed to the
// final-record callback once, so logs keep every domain, however short-lived.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tracefmt/events.h"
#include "tracefmt/merge.h"
#include "tracefmt/record.h"

namespace xenbaked {

struct VcpuTotals {
  uint32_t vcpu = 0;
  uint64_t running_ns = 0;
  uint64_t runnable_ns = 0;
  uint64_t blocked_ns = 0;
  uint64_t offline_ns = 0;
  uint64_t dispatches = 0;   // transitions into running
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  tracefmt::Runstate state = tracefmt::Runstate::kOffline;  // state at snapshot time
  uint32_t last_cpu = 0;     // physical CPU it last ran on
};

struct DomainTotals {
  uint32_t domid = 0;
  uint64_t instance = 0;         // distinguishes incarnations of a reused id
  bool destroyed = false;        // DOM_REM seen: this is the domain's final record
  uint64_t first_seen_ns = 0;    // engine time (ns since the engine's first record)
  uint64_t last_seen_ns = 0;
  uint64_t running_ns = 0;       // sums over the vCPUs
  uint64_t runnable_ns = 0;
  uint64_t blocked_ns = 0;
  uint64_t offline_ns = 0;
  uint64_t dispatches = 0;
  uint64_t run_slices = 0;       // completed run intervals
  uint64_t slice_min_ns = 0;     // 0 when no slice completed
  uint64_t slice_max_ns = 0;
  uint64_t slice_sum_ns = 0;     // mean = slice_sum_ns / run_slices
  uint64_t allocated_ns = 0;     // sum of SWITCH_INFNEXT next_time given (finite slices)
  uint64_t allocations = 0;      // switches in with a finite slice
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  uint64_t hypercalls = 0;
  uint64_t io_records = 0;
  uint64_t lost_records = 0;     // LOST_RECORDS counts reported while this domain was running
  std::vector<VcpuTotals> vcpus; // by vCPU id
};

struct CpuTotals {
  uint32_t cpu = 0;
  uint64_t records = 0;
  uint64_t first_tsc = 0;
  uint64_t last_tsc = 0;
  uint64_t elapsed_ns = 0;       // last_tsc - first_tsc
  uint64_t accounted_ns = 0;     // running time of all vCPUs (idle included) on this CPU
  uint64_t lost_records = 0;     // sum of LOST_RECORDS counts seen on this CPU
  uint64_t lost_gap_ns = 0;      // time covered by loss (from first lost TSC to the report)
  uint64_t wrap_records = 0;
  // accounted / (elapsed - lost_gap), 1.0 when nothing elapsed
  double capture_ratio() const;
};

struct AccountingSnapshot {
  uint64_t at_ns = 0;            // engine time of the snapshot
  uint64_t records = 0;
  uint64_t lost_records = 0;     // all CPUs
  uint64_t anomalies = 0;        // records that contradicted the model (reported, not fatal)
  std::vector<DomainTotals> domains;  // live and destroyed-not-yet-collected, by domid
  std::vector<CpuTotals> cpus;        // by CPU id
};

struct AccountingConfig {
  uint64_t cpu_khz = 0;          // TSC frequency (xc_physinfo cpu_khz or --cpu-khz)
};

class AccountingEngine {
 public:
  explicit AccountingEngine(const AccountingConfig& config);
  ~AccountingEngine();
  AccountingEngine(const AccountingEngine&) = delete;
  AccountingEngine& operator=(const AccountingEngine&) = delete;

  // Records must come in merged TSC order (tracefmt::MergedTraceReader or LiveMerger).
  void Add(const tracefmt::MergedRecord& m);
  void Add(uint32_t cpu, uint64_t tsc, const tracefmt::Record& rec);

  // Totals since start with every open interval counted up to `tsc` (an interval, or partial,
  // record). Cost: linear in domains × vCPUs.
  AccountingSnapshot Snapshot(uint64_t tsc) const;
  // TSC of the newest record added.
  uint64_t now_tsc() const;
  uint64_t TscToNs(uint64_t tsc) const;   // engine time: ns since the first record

  // Called once for each destroyed domain with its final totals (at the DOM_REM, or when its id
  // is reused without one).
  void OnFinal(std::function<void(const DomainTotals&)> callback);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xenbaked
