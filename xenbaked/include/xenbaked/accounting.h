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
//   engine.AddAll(merged);   // zero-copy, in runs; record by record: engine.Add(merged_record)
//   AccountingSnapshot totals = engine.Snapshot(engine.now_tsc());
//
// What is known and what is not: each vCPU's time since its origin (its domain's DOM_ADD, or the
// engine's first record) splits exactly into running, runnable, blocked, offline and unknown —
// time the trace cannot vouch for. The rule is sound: the true time in each state lies within
// [reported, reported + unknown]. Unknown is
//  - the time before the vCPU's first record;
//  - the part of an interval a loss gap covered, when the gap could have hidden a change of it:
//    a vCPU running on the lossy CPU (its running time ends at the first lost TSC), or any vCPU
//    not running (its wake, dispatch or pause may have been written on the lossy CPU). A vCPU
//    running on another CPU is untouched. After the gap the vCPU's next record says where it
//    was (its old state), so only the gap itself is lost. Xen writes the report only when space
//    frees, after what the other CPUs wrote meanwhile, so the end of a closed interval not
//    running is held until every CPU has recorded past it, and a report that comes first makes
//    the part its gap covers unknown;
//  - the part of a closed interval a record older than it (out of order) shows was not in one
//    state;
//  - an interval a contradicting record ends (old state not the one held) with no loss to
//    explain it, except what a snapshot had already published. A contradiction is first held
//    back for 10 µs of TSC: records from two CPUs out of TSC order by less (a wake on the
//    waker's CPU and the dispatch it caused on another, TSC skew) are put in order instead.
// The gap is also reported per CPU as `lost_gap_ns`, never as anyone's running time.
//
// Totals only grow: a snapshot publishes an open interval, or the held end of a closed one, only
// as far as nothing still to come can take back (a vCPU running on CPU c up to c's last record,
// a loss on c beginning after it; one not running up to the oldest last record over the CPUs),
// and a later close or report never takes back what was published. After EndOfInput every
// interval runs to the snapshot. A domain destroyed before every CPU recorded past its vCPUs'
// last changes ends with that stretch unknown (its final record cannot be taken back).
//
// Units: all times are accumulated in TSC ticks and converted to ns once, at Snapshot, so sums
// over many intervals carry no per-interval rounding.
//
// Memory: a domid-indexed table (32768 × 4 bytes), one slot per domain id ever seen (~200 bytes)
// and one ~320-byte state per vCPU named. A domain's vCPU states are a table by id that grows to
// at most twice the vCPUs the domain has named, and a map for ids beyond it, so memory follows
// the records given, not the largest id a (maybe hostile) record names (ids are bounded by Xen:
// domid <= 32767, vCPU id <= kMaxVcpuId).
//
// Domain ids are reused by Xen after a domain is destroyed; each incarnation is its own
// `instance` and a reused id starts fresh. A destroyed domain's last totals are handed to the
// final-record callback once, so logs keep every domain, however short-lived.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tracefmt/events.h"
#include "tracefmt/merge.h"
#include "tracefmt/record.h"

namespace xenbaked {

// Every count in these structs is since the engine started (or since the domain's incarnation
// began); WindowHistory (xenbaked/windows.h) turns snapshots into per-window deltas.
struct VcpuTotals {
  uint32_t vcpu = 0;
  bool seen = false;  // a record named this vCPU (ids below the highest seen may not be)
  uint64_t running_ns = 0;
  uint64_t runnable_ns = 0;
  uint64_t blocked_ns = 0;
  uint64_t offline_ns = 0;
  // Time the trace cannot vouch for: before the vCPU's first record, where a loss gap may have
  // hidden a change, an interval a contradicting record dropped. The true time in each state
  // lies within [its figure, its figure + unknown_ns].
  uint64_t unknown_ns = 0;
  uint64_t dispatches = 0;  // transitions into running
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  tracefmt::Runstate state = tracefmt::Runstate::kOffline;  // state at snapshot time
  uint32_t last_cpu = 0;                                    // physical CPU it last ran on
};

struct DomainTotals {
  uint32_t domid = 0;
  uint64_t instance = 0;       // distinguishes incarnations of a reused id
  bool destroyed = false;      // DOM_REM seen: this is the domain's final record
  uint64_t first_seen_ns = 0;  // engine time (ns since the engine's first record)
  uint64_t last_seen_ns = 0;
  uint64_t running_ns = 0;  // sums over the vCPUs
  uint64_t runnable_ns = 0;
  uint64_t blocked_ns = 0;
  uint64_t offline_ns = 0;
  uint64_t unknown_ns = 0;  // sum over the vCPUs, as the states are
  uint64_t dispatches = 0;
  uint64_t run_slices = 0;    // completed run intervals
  uint64_t slice_min_ns = 0;  // 0 when no slice completed
  uint64_t slice_max_ns = 0;
  uint64_t slice_sum_ns = 0;  // mean = slice_sum_ns / run_slices
  uint64_t allocated_ns = 0;  // sum of SWITCH_INFNEXT next_time given (finite slices)
  uint64_t allocations = 0;   // switches in with a finite slice
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  // Hypercall and I/O records while it ran, charged at that CPU's next scheduler record (or
  // EndOfInput): the CPU's own counts (CpuTotals) hold them from the moment they arrive.
  uint64_t hypercalls = 0;
  uint64_t io_records = 0;
  uint64_t lost_records = 0;      // LOST_RECORDS counts whose record names this domain (the one
                                  // running on that CPU when the hypervisor had space again)
  std::vector<VcpuTotals> vcpus;  // by vCPU id
};

struct CpuTotals {
  uint32_t cpu = 0;
  uint64_t records = 0;
  uint64_t first_tsc = 0;
  uint64_t last_tsc = 0;
  // max(last_tsc, snapshot tsc) - first_tsc: open intervals are counted up to the snapshot's
  // TSC, so the elapsed time of a quiet CPU (no record lately) runs to it as well.
  uint64_t elapsed_ns = 0;
  uint64_t accounted_ns = 0;      // running time of all vCPUs (idle included) on this CPU
  uint64_t lost_records = 0;      // sum of LOST_RECORDS counts seen on this CPU
  uint64_t lost_gap_ns = 0;       // time covered by loss (from first lost TSC to the report),
                                  // clipped to the CPU's own span
  uint64_t unknown_start_ns = 0;  // from first_tsc to the first dispatch seen on this CPU: who
                                  // ran then is unknown (part of elapsed, not of accounted)
  uint64_t wrap_records = 0;
  uint64_t hypercalls = 0;  // hypercall records on this CPU (attributed or not)
  uint64_t io_records = 0;
  uint64_t unattributed = 0;  // hypercall/I/O records while no domain was known to run here
                              // (charged as DomainTotals::hypercalls is)
  // accounted / (elapsed - lost_gap), 1.0 when nothing elapsed. The unknown start counts
  // against it: it is time nobody's accounting covers.
  double capture_ratio() const;
};

// Records that contradicted the model, by kind. None is fatal; each is counted and resynced.
struct AnomalyCounts {
  uint64_t runstate_mismatch = 0;  // old state differed from the known one: resynced to new
  uint64_t switch_mismatch = 0;    // a dispatch other than the one SWITCH_INFNEXT announced
  uint64_t bad_id = 0;             // domain id > 32767, vCPU id > kMaxVcpuId, CPU > kMaxCpuId
  uint64_t time_backwards = 0;     // a change older than the interval it closes (TSC skew)
  uint64_t total() const { return runstate_mismatch + switch_mismatch + bad_id + time_backwards; }
};

struct AccountingSnapshot {
  uint64_t at_ns = 0;  // engine time of the snapshot
  uint64_t records = 0;
  uint64_t lost_records = 0;    // all CPUs
  uint64_t anomalies = 0;       // records that contradicted the model (reported, not fatal)
  AnomalyCounts anomaly_kinds;  // anomalies broken down; anomaly_kinds.total() == anomalies
  uint64_t tsc = 0;             // the TSC the snapshot was taken at
  uint64_t cpu_khz = 0;
  // Live and destroyed-not-yet-forgotten domains (AccountingEngine::ForgetDestroyed), by domid.
  std::vector<DomainTotals> domains;
  std::vector<CpuTotals> cpus;  // CPUs that delivered a record, by CPU id
};

// Limits that bound memory whatever the input says (a corrupt record cannot make us allocate).
inline constexpr uint32_t kMaxVcpuId = 8191;  // above Xen's largest guest (HVM 128, PV 8192)
inline constexpr uint32_t kMaxCpuId = 16383;  // above Xen's NR_CPUS on every distribution

// What the engine holds, for memory reports (the daemon's soak) and the bounded-state test.
struct EngineStateSizes {
  size_t domain_slots = 0;  // allocated: held domains plus slots free for reuse
  size_t domains_held = 0;  // live, or destroyed and not yet forgotten
  size_t vcpu_states = 0;   // allocated over all slots (capacity: kept for the next incarnation)
  size_t cpus = 0;
  size_t bytes = 0;  // heap held: the domid table, slots, vCPU states, CPU states
};

struct AccountingConfig {
  uint64_t cpu_khz = 0;  // TSC frequency (xc_physinfo cpu_khz or --cpu-khz)
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
  // The same for a record left in place (MergedTraceReader::ForEach): identical results, without
  // decoding the record first; only the words the record's handler uses are loaded.
  void AddRaw(uint32_t cpu, uint64_t tsc, tracefmt::RecordRef rec);
  // Every remaining record of `merged`, then EndOfInput; the results are those of AddRaw record
  // by record, at a fraction of the cost: the records after each scheduler record that are only
  // counted (hypercalls, I/O) are taken as one run (MergedTraceReader::ForEachRun).
  // merged.error() then says whether the input was damaged.
  void AddAll(tracefmt::MergedTraceReader& merged);
  // The head of `offer`, then the records after it that are only counted (hypercalls, I/O and
  // events the engine ignores) whose TSC stays at or below offer.limit, as one run: what Add
  // would make of each in merged order (see AddAll). A record that ends the run is taken as the
  // next head, and so on, while its merged TSC is below offer.lead and within the limit. The
  // daemon's path, fed by tracefmt::LiveMerger::EmitRunsUpTo with its window boundary as the
  // limit.
  tracefmt::RunTaken TakeRun(const tracefmt::RunOffer& offer);

  // The input ended (a capture read to its end, the daemon stopping): hypercalls and I/O counted
  // on each CPU since its last scheduler record go to whoever runs there, and snapshots count
  // every open interval up to their TSC (no record can come to contradict it).
  void EndOfInput();

  // Totals since start with every open interval counted up to `tsc` as far as the trace vouches
  // for it (see the top of this file): a later snapshot never shows less. Cost: linear in
  // domains × vCPUs. It notes how far it published in the engine (hence not thread-safe with
  // Add, as nothing here is).
  AccountingSnapshot Snapshot(uint64_t tsc) const;
  // TSC of the newest record added (0 before the first record with a TSC).
  uint64_t now_tsc() const;
  // Records added so far (all events, scheduler or not).
  uint64_t records() const;
  uint64_t TscToNs(uint64_t tsc) const;  // engine time: ns since the first record
  // The inverse: the TSC at engine time `engine_ns` (to snapshot exactly at a window boundary).
  uint64_t NsToTsc(uint64_t engine_ns) const;
  // Whether a record with a TSC has arrived (engine time is defined from then on).
  bool started() const;

  // Called once for each destroyed domain with its final totals (at the DOM_REM, or when its id
  // is reused without one).
  void OnFinal(std::function<void(const DomainTotals&)> callback);
  // Drops destroyed domains from later snapshots (their final record was already handed out).
  // The daemon calls it after publishing; offline tools never do, so every domain is listed.
  // A forgotten domain's slot is reused by the next new domain, so under churn the engine holds
  // as many slots as domains were ever held at once, not one per id ever seen.
  void ForgetDestroyed();
  EngineStateSizes StateSizes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xenbaked
