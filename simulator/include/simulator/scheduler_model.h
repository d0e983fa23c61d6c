// simulator/scheduler_model.h — a Xen host's scheduler as a deterministic discrete-event model.
//
// P physical CPUs (sparse ids allowed) share one credit2-like run queue (credit2's default: one
// queue per socket, here one socket). Domains have V vCPUs each; a vCPU is running, runnable,
// blocked or offline. Busy vCPUs never block; the others alternate run bursts and blocked
// periods (exponential). Slices end on a timer; a woken vCPU takes an idle CPU at once.
// Domains are created and destroyed mid-run (ids reused after destruction, as Xen's domid
// rover does); hypercall and I/O records are emitted by running guests; bursts of records
// stress the buffers.
//
// It emits what Xen 4.17 emits, in Xen's order (xen/common/sched/core.c, checked against real
// captures in shared/data/):
//   context switch   csched2:schedule, csched2:credit_burn (prev), csched2:runq_candidate
//                    (next), SWITCH_INFPREV (dom, unit, runtime_ns), SWITCH_INFNEXT (dom, unit,
//                    waited_ns, next_time_ns), SWITCH (prev dom, unit, next dom, unit),
//                    RUNSTATE_CHANGE prev, RUNSTATE_CHANGE next
//   no switch        SWITCH_INFCONT (dom, unit, runtime_ns, next_time_ns), CONTINUE_RUNNING
//   wake             WAKE (dom, vcpu), RUNSTATE_CHANGE blocked|offline -> runnable,
//                    csched2:runq_pos, csched2:tickle
//   block            BLOCK (dom, vcpu), then a context switch
//   domain           DOM_ADD (dom) ... SLEEP + RUNSTATE_CHANGE -> offline per vCPU, DOM_REM (dom)
// RUNSTATE_CHANGE is 0x00021001 | old << 8 | new << 4 with one word: vcpu | dom << 16. The
// credit2 records carry plausible values in Xen's layouts; accounting must not depend on them.
//
// TSCs are per CPU: skew * cpu index + ns * cpu_khz / 1e6, strictly increasing (each record costs
// a few ticks, as real records do) and, without skew, consistent across CPUs.
//
//   SchedulerModel model(config, &producer);   // producer may be null: truth only
//   model.AdvanceTo(/*ns=*/1'000'000'000);       // never sleeps
//   Truth t = model.TruthNow();
#pragma once

#include <cstdint>
#include <deque>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "simulator/producer.h"
#include "simulator/truth.h"
#include "tracefmt/events.h"

namespace simulator {

// Ticks one record costs on its CPU: consecutive records never share a TSC, as on real hardware.
// The model's tick counter therefore runs ahead of its simulated time (the truth's clock) while
// records come faster than one per 200 ticks — by up to a burst's records × this, which a
// consumer comparing trace time with the truth's must allow.
inline constexpr uint64_t kRecordTicks = 200;

struct WorkloadConfig {
  uint64_t seed = 1;
  std::vector<uint32_t> cpu_ids = {0, 1, 2, 3};  // online physical CPUs (sparse ids allowed)
  uint64_t cpu_khz = 2596120;
  uint32_t domains = 4;  // at start, Domain-0 included
  uint32_t vcpus_per_domain = 2;
  uint64_t slice_ns = 10'000'000;  // the credit2 slice given in SWITCH_INFNEXT
  double busy_fraction = 0.25;     // share of guest vCPUs that never block
  uint64_t mean_run_ns = 2'000'000;
  uint64_t mean_block_ns = 6'000'000;
  double hypercall_hz = 2000;               // per CPU while a guest runs on it
  double io_hz = 200;                       // per CPU while a guest runs on it
  double churn_hz = 0;                      // domain creations per second (each later destroyed)
  uint64_t mean_lifetime_ns = 300'000'000;  // of domains created mid-run
  uint32_t max_domains = 32000;             // creations are skipped while this many are alive
  uint64_t burst_interval_ns = 0;           // 0: no bursts; else mean time between bursts
  uint32_t burst_records = 2000;  // hypercall records in one burst (one CPU, back to back)
  uint16_t first_new_domid = 0;   // start of the domid rover for created domains (0: after
                                  // the initial ones); set near 0x7fef to test reuse
  uint64_t tsc_skew_ticks = 0;    // CPU n's TSC base is n * skew
  bool credit2_records = true;
};

// Fills in defaults and rejects impossible configurations (no CPUs, no vCPUs, ...).
tracefmt::Status ValidateWorkload(const WorkloadConfig& config);

struct DomainInfo {
  uint16_t id = 0;
  std::string name;
  uint32_t vcpus = 0;
  uint64_t cpu_time_ns = 0;  // running time so far, all vCPUs
  uint32_t running_vcpus = 0;
  bool blocked = false;  // every vCPU blocked
  // Per vCPU, by id (xc_vcpu_getinfo's cpu_time); empty when the workload does not know it.
  std::vector<uint64_t> vcpu_cpu_time_ns = {};
  // Distinguishes a reused id's domains (Xen's domain handle): the creation time + 1; 0 unknown.
  uint64_t instance = 0;
};

// What drives the producer: the scheduler model, or a replayed capture (simulator/replay.h).
class Workload {
 public:
  virtual ~Workload() = default;
  // Runs everything up to and including simulated time `ns` (time never goes back).
  virtual void AdvanceTo(uint64_t ns) = 0;
  virtual uint64_t now_ns() const = 0;
  virtual Truth TruthNow() const = 0;
  // Live guest domains and Domain-0, by id (the idle domain is not listed, as in Xen).
  virtual std::vector<DomainInfo> LiveDomains() const = 0;
  // The newest TSC any CPU has reached now (0: unknown), to place a read of LiveDomains on the
  // trace's clock.
  virtual uint64_t TscNow() const { return 0; }
  // One live vCPU's running time so far (xc_vcpu_getinfo); false when the domain or vCPU does
  // not exist or the workload does not know it.
  virtual bool VcpuCpuTime(uint16_t /*domid*/, uint32_t /*vcpu*/, uint64_t& /*ns*/) const {
    return false;
  }
};

class SchedulerModel final : public Workload {
 public:
  SchedulerModel(const WorkloadConfig& config, TraceProducer* producer);

  void AdvanceTo(uint64_t ns) override;
  uint64_t now_ns() const override { return now_; }
  Truth TruthNow() const override;
  std::vector<DomainInfo> LiveDomains() const override;
  uint64_t TscNow() const override;
  bool VcpuCpuTime(uint16_t domid, uint32_t vcpu, uint64_t& ns) const override;
  // The CPU's TSC at simulated time `ns` (without the per-record cost).
  uint64_t TscAt(uint32_t cpu, uint64_t ns) const;
  uint64_t records_emitted() const { return records_emitted_; }

 private:
  enum class EventKind : uint8_t {
    kSliceEnd,
    kBlock,
    kWake,
    kHypercall,
    kIo,
    kBurst,
    kCreateDomain,
    kDestroyDomain
  };
  struct Event {
    uint64_t time;
    uint64_t seq;  // ties run in the order they were scheduled: determinism
    EventKind kind;
    uint32_t target;  // CPU index, vCPU index or domain index
    uint64_t generation;
    bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };
  struct Vcpu {
    uint32_t domain_index = 0;
    uint16_t id = 0;
    tracefmt::Runstate state = tracefmt::Runstate::kOffline;
    uint64_t state_entry_ns = 0;
    uint32_t cpu_index = 0;    // where it runs or last ran
    bool busy = false;         // never blocks
    uint64_t run_left_ns = 0;  // of the current burst
    uint64_t dispatched_ns = 0;
    uint64_t generation = 0;  // invalidates its pending block/wake events
    VcpuTruth truth;
  };
  struct Domain {
    uint16_t id;
    std::string name;
    bool alive = true;
    uint64_t created_ns = 0;
    uint64_t destroyed_ns = 0;
    uint64_t hypercalls = 0;
    uint64_t io_events = 0;
    std::vector<uint32_t> vcpus;  // vCPU indices
  };
  struct Cpu {
    uint32_t id;
    uint32_t idle_vcpu;
    uint32_t current;
    uint64_t tsc_base;
    uint64_t slice_generation = 0;
  };

  // --- time and records ---
  void Schedule(uint64_t time, EventKind kind, uint32_t target, uint64_t generation = 0);
  uint64_t NextTsc(uint32_t cpu_index);
  void Emit(uint32_t cpu_index, uint32_t event, std::initializer_list<uint32_t> words);
  uint64_t Exponential(double mean);
  double Uniform();

  // --- the scheduler ---
  void Dispatch(const Event& e);
  void ContextSwitch(uint32_t cpu_index, tracefmt::Runstate prev_becomes);
  uint32_t PickNext(uint32_t cpu_index, tracefmt::Runstate prev_becomes);
  void ChangeRunstate(uint32_t cpu_index, uint32_t vcpu_index, tracefmt::Runstate to);
  void StartRunning(uint32_t cpu_index, uint32_t vcpu_index);
  void OnSliceEnd(uint32_t cpu_index, uint64_t generation);
  void OnBlock(uint32_t vcpu_index, uint64_t generation);
  void OnWake(uint32_t vcpu_index, uint64_t generation);
  void MakeRunnable(uint32_t vcpu_index, uint32_t cpu_index);
  void TickleIdleCpu(uint32_t preferred_cpu_index);
  void OnHypercall(uint32_t cpu_index, bool io);
  void OnBurst();
  uint32_t CreateDomain(uint16_t id, std::string name, bool emit);
  void OnCreateDomain();
  void OnDestroyDomain(uint32_t domain_index);
  uint16_t AllocateDomid();
  uint32_t DomainUnitWord(uint32_t vcpu_index) const;  // unit | dom << 16
  uint16_t DomainIdOf(uint32_t vcpu_index) const;
  bool IsIdle(uint32_t vcpu_index) const;

  WorkloadConfig config_;
  TraceProducer* producer_;
  std::mt19937_64 rng_;
  uint64_t now_ = 0;
  uint64_t seq_ = 0;
  uint64_t records_emitted_ = 0;
  uint64_t last_ticks_ = 0;  // of the last record, without any CPU's skew
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::vector<Cpu> cpus_;
  std::vector<Vcpu> vcpus_;
  std::vector<Domain> domains_;
  std::unordered_map<uint16_t, uint32_t> live_by_id_;
  std::deque<uint32_t> runqueue_;
  uint32_t idle_domain_index_ = 0;
  uint16_t domid_rover_ = 1;
  uint32_t live_guests_ = 0;
};

}  // namespace simulator
