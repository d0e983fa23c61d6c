// xenbaked/windows.h — accounting over fixed windows (default 1 s and 10 s) in a bounded history.
//
// The engine keeps totals since start; a window is the difference of two snapshots. WindowHistory
// is fed snapshots over time and keeps, for each configured length, the last `history` closed
// windows as deltas (per domain, per vCPU, per CPU), plus the newest snapshot as totals since
// start. Windows are aligned to multiples of their length in engine time (ns since the first
// record); a window closes at the first snapshot at or past its nominal end.
//
// To get windows that end exactly on their boundaries, drive the engine through
// WindowedAccounting, which snapshots at each boundary before the first record beyond it:
//
//   AccountingEngine engine({.cpu_khz = khz});
//   WindowHistory history({.lengths_ns = {1'000'000'000, 10'000'000'000}, .history = 10});
//   WindowedAccounting acct(engine, history);
//   while (merged.Next(m)) acct.Add(m);
//   acct.Flush();                                  // the partial window up to the last record
//   for (const Window& w : history.windows(/*length_index=*/1)) use(w.delta);
//
// Memory: each kept window holds one AccountingSnapshot of deltas, about
//   domains × (200 B + vCPUs × 80 B) + CPUs × 130 B,
// so the history holds at most sum over lengths of `history` such snapshots, plus one snapshot
// per length (the start of the open window), one for the totals, and the final records of
// domains destroyed in the open window. 1,000 domains × 4 vCPUs, 2 lengths × 10 windows: about
// 12 MB. Nothing grows with run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "tracefmt/merge.h"
#include "xenbaked/accounting.h"

namespace xenbaked {

struct WindowConfig {
  std::vector<uint64_t> lengths_ns{1'000'000'000, 10'000'000'000};  // each > 0
  size_t history = 10;                                              // windows kept per length
};

struct Window {
  uint64_t length_ns = 0;  // the configured length this window belongs to
  uint64_t index = 0;      // window k covers [k × length, (k+1) × length) nominally
  uint64_t start_ns = 0;   // engine time of the snapshots it is the difference of
  uint64_t end_ns = 0;
  // Differences between the snapshots at end and start: every ns and count field of every
  // domain, vCPU and CPU is for this window alone; cpus[i].capture_ratio() is the window's.
  // Domains created in the window count from zero; domains destroyed in it are included up to
  // their final record (destroyed = true). slice_min_ns/slice_max_ns cannot be differenced and
  // are 0 here; run_slices and slice_sum_ns are exact. `state` and `last_cpu` are at the end.
  AccountingSnapshot delta;
};

// `later` − `earlier` for two snapshots of one engine, as described for Window::delta.
// `finals` are final records of domains that vanished from `later` (destroyed, then forgotten
// or replaced by a new incarnation of their id); each is differenced against its incarnation in
// `earlier`, or counted whole when it was born after `earlier`.
AccountingSnapshot DiffSnapshots(const AccountingSnapshot& later, const AccountingSnapshot& earlier,
                                 const std::vector<DomainTotals>& finals = {});

class WindowHistory {
 public:
  explicit WindowHistory(WindowConfig config = {});

  // Feeds a snapshot; `snap.at_ns` must not go backwards. Closes each window whose nominal end
  // is at or before it (a gap of several windows closes one window spanning the gap).
  void Update(const AccountingSnapshot& snap);
  // A final record from AccountingEngine::OnFinal: needed for domains destroyed and gone from
  // snapshots (forgotten, or their id reused) before the window they died in closes.
  void AddFinal(const DomainTotals& final_totals);

  size_t length_count() const { return lengths_.size(); }
  uint64_t length_ns(size_t length_index) const { return lengths_[length_index].length_ns; }
  // Closed windows of one length, oldest first; at most `history` of them.
  const std::deque<Window>& windows(size_t length_index) const {
    return lengths_[length_index].closed;
  }
  // The newest snapshot fed: totals since start.
  const AccountingSnapshot& totals() const { return totals_; }
  // Engine time of the nearest nominal window end still to come, over all lengths.
  uint64_t next_boundary_ns() const;
  // Bytes held (an estimate from the sizes above), for the daemon's health report.
  size_t ApproxBytes() const;

 private:
  struct PerLength {
    uint64_t length_ns = 0;
    uint64_t next_index = 0;           // index of the window now open
    AccountingSnapshot start;          // snapshot at the open window's start
    std::vector<DomainTotals> finals;  // domains destroyed since `start`
    std::deque<Window> closed;
  };
  WindowConfig config_;
  std::vector<PerLength> lengths_;
  AccountingSnapshot totals_;
  bool started_ = false;
};

// Drives an engine and a history so that windows end exactly on their boundaries: before the
// first record past a boundary, the engine is snapshotted at the boundary's TSC. The per-record
// cost is one comparison. It installs the engine's OnFinal callback; pass your own here.
class WindowedAccounting {
 public:
  WindowedAccounting(AccountingEngine& engine, WindowHistory& history,
                     std::function<void(const DomainTotals&)> on_final = {});

  void Add(const tracefmt::MergedRecord& m) {
    if (m.tsc > next_boundary_tsc_ && m.rec.has_tsc) [[unlikely]]
      CrossBoundaries(m.tsc);
    engine_.Add(m);
  }
  // The same for a run of records left in place (the daemon's live path,
  // tracefmt::LiveMerger::EmitRunsUpTo): the engine takes the run up to the next window boundary.
  tracefmt::RunTaken TakeRun(tracefmt::RunOffer offer);
  // Feeds the snapshot at the newest record (the open, partial windows are not closed).
  void Flush();

 private:
  void CrossBoundaries(uint64_t tsc);
  AccountingEngine& engine_;
  WindowHistory& history_;
  std::function<void(const DomainTotals&)> on_final_;
  uint64_t next_boundary_tsc_ = 0;  // 0 until the engine has started
};

}  // namespace xenbaked
