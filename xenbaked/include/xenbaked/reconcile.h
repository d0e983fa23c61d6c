// xenbaked/reconcile.h — the trace's running time against the hypervisor's own clock.
//
// Xen keeps each vCPU's running time itself (xc_vcpu_getinfo → cpu_time), independently of the
// trace. Every reconciliation period the daemon snapshots the accounting engine, then reads every
// vCPU's cpu_time (Hypervisor::ReadVcpuCpuTimes), and the Reconciler compares, per vCPU, the two
// deltas since the previous read: trace running time (ΔR) and Xen's cpu_time (ΔX). Per domain
// and for the host it reports the difference ΔX − ΔR ("error": positive when the trace shows less
// than Xen) and whether the known limits explain it:
//
//   - unknown time (ΔU, loss gaps and contradictions: AccountingEngine): the trace's running time
//     may be short by up to ΔU;
//   - the read instants (the floor): the trace vouches for a vCPU's time only up to its frontier
//     (a running vCPU up to its CPU's last record, any other up to the oldest last record over the
//     CPUs), while cpu_time is read later, at T. Running time in (frontier, T] is in ΔX but not yet
//     in ΔR; it is bounded by the lag L = T − frontier of that vCPU. So, per vCPU and period,
//        −L_previous − tolerance  ≤  ΔX − ΔR  ≤  L_now + ΔU + tolerance,
//     where the tolerance covers clock rates (Xen's system time against TSC / cpu_khz): 0.1 % of
//     ΔX plus 1 µs. T comes as a TSC from the hypervisor (VcpuCpuTimes::read_tsc); when it cannot
//     tell, L is the frontier's distance behind the snapshot plus `fallback_lag_ns`.
//   Summed over a domain's vCPUs (or the host's) the bound is the sum of theirs.
//
// Whom it compares: a vCPU listed by both reads, with the same domain incarnation on both sides
// (the engine's `instance`, the hypervisor's), counters that did not go back, and a vCPU the trace
// has seen. Anything else starts a new baseline and is compared from the next period on: a vCPU
// appearing (new domain, vCPU brought online) counts from its first read; one vanishing (domain
// destroyed, vCPU offlined) loses the time since its last read; a domain id reused by a new
// domain (a new instance, or cpu_time going back: a recreated domain restarts at 0) is counted as
// a reset. The running totals per domain (trace and Xen over the compared periods) only grow
// within an incarnation, so their difference is the drift an operator watches.
//
//   Reconciler rec;
//   AccountingSnapshot snap = engine.Snapshot(engine.now_tsc());   // first the trace ...
//   Result<VcpuCpuTimes> xen = hv.ReadVcpuCpuTimes();              // ... then Xen
//   const ReconcileReport& r = rec.Update(snap, *xen, period_ns);
//   for (const DomainReconcile& d : r.domains) if (!d.explained()) warn(d);
//
// Cost: linear in vCPUs (one hash lookup each); memory one 64-byte state per vCPU read.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "xenbaked/accounting.h"
#include "xenbaked/hypervisor.h"

namespace xenbaked {

struct ReconcileConfig {
  // Lag assumed past the snapshot when the hypervisor gives no read TSC (the daemon passes its
  // backstop: the trace is drained at least that often).
  uint64_t fallback_lag_ns = 100'000'000;
  // A read TSC this far past the snapshot is taken as from another clock (the libxen shim runs
  // on the machine's TSC, not the simulator's): the fallback applies.
  uint64_t max_plausible_lag_ns = 60'000'000'000;
  double relative_tolerance = 1e-3;  // of ΔX
  uint64_t tolerance_ns = 1'000;     // per vCPU
};

// One domain's (or the host's) figures for the last period, and its totals since its
// incarnation's first read.
struct DomainReconcile {
  uint32_t domid = 0;
  uint64_t instance = 0;          // the engine's incarnation (DomainTotals::instance)
  uint32_t vcpus = 0;             // vCPUs compared in the period
  uint64_t trace_running_ns = 0;  // ΔR
  uint64_t xen_cpu_ns = 0;        // ΔX
  uint64_t unknown_ns = 0;        // ΔU
  uint64_t lag_before_ns = 0;     // Σ L at the previous read
  uint64_t lag_after_ns = 0;      // Σ L at this read
  uint64_t tolerance_ns = 0;
  // Over every compared period of this incarnation: counters that only grow.
  uint64_t trace_running_total_ns = 0;
  uint64_t xen_cpu_total_ns = 0;
  uint64_t unknown_total_ns = 0;
  uint64_t unexplained_periods = 0;

  int64_t error_ns() const {
    return static_cast<int64_t>(xen_cpu_ns) - static_cast<int64_t>(trace_running_ns);
  }
  // The largest error the unknown time, the lags and the tolerance explain, each way.
  uint64_t bound_below_ns() const { return lag_before_ns + tolerance_ns; }
  uint64_t bound_above_ns() const { return lag_after_ns + unknown_ns + tolerance_ns; }
  bool explained() const {
    const int64_t e = error_ns();
    return e >= 0 ? static_cast<uint64_t>(e) <= bound_above_ns()
                  : static_cast<uint64_t>(-e) <= bound_below_ns();
  }
};

struct ReconcileReport {
  uint64_t reads = 0;       // reconciliations done since start
  uint64_t period_ns = 0;   // wall time since the previous read (0 at the first)
  uint64_t read_ns = 0;     // how long reading the hypervisor took (the daemon measures it)
  uint64_t vcpus_read = 0;  // vCPUs the hypervisor listed
  bool read_tsc_known = false;
  // Since start: baselines restarted because a domain id was reused (new instance, or cpu_time
  // went back), vCPUs first seen and vCPUs gone between two reads, periods unexplained.
  uint64_t resets = 0;
  uint64_t vcpus_appeared = 0;
  uint64_t vcpus_vanished = 0;
  uint64_t unexplained_periods = 0;      // domain periods outside their bound
  DomainReconcile host;                  // sums over the domains below (domid 0, instance 0)
  std::vector<DomainReconcile> domains;  // domains with a vCPU compared this period, by domid

  // The figures of that incarnation of `domid`, or null when it was not compared this period.
  const DomainReconcile* Find(uint32_t domid, uint64_t instance) const;
};

class Reconciler {
 public:
  explicit Reconciler(ReconcileConfig config = {});

  // `snap` must have been taken before `xen` was read (the bound above assumes the trace's
  // frontier precedes the read). `period_ns` is the wall time since the previous Update.
  const ReconcileReport& Update(const AccountingSnapshot& snap, const VcpuCpuTimes& xen,
                                uint64_t period_ns);
  const ReconcileReport& report() const { return report_; }
  void set_read_ns(uint64_t ns) { report_.read_ns = ns; }

 private:
  struct VcpuState {
    uint64_t trace_instance = 0;
    uint64_t xen_instance = 0;
    uint64_t running_ns = 0;
    uint64_t unknown_ns = 0;
    uint64_t cpu_time_ns = 0;
    uint64_t lag_ns = 0;
    uint64_t generation = 0;  // the read that last saw it
    bool trace_seen = false;
  };
  struct DomainState {
    uint64_t trace_instance = 0;
    uint64_t xen_instance = 0;
    uint64_t trace_running_total_ns = 0;
    uint64_t xen_cpu_total_ns = 0;
    uint64_t unknown_total_ns = 0;
    uint64_t unexplained_periods = 0;
    uint64_t generation = 0;
  };

  ReconcileConfig config_;
  ReconcileReport report_;
  std::unordered_map<uint64_t, VcpuState> vcpus_;  // key: domid << 32 | vcpu
  std::unordered_map<uint32_t, DomainState> domains_;
  uint64_t generation_ = 0;
};

}  // namespace xenbaked
