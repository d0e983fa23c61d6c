// Internal to the accounting engine (accounting.cc: the hot path and the interface;
// accounting_intervals.cc: runstate intervals, loss and unknown time, domains;
// accounting_snapshot.cc: what a snapshot publishes): the engine's state and the Impl behind
// AccountingEngine.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <vector>

#include "tracefmt/clock.h"
#include "tracefmt/events.h"
#include "tracefmt/merge.h"
#include "xenbaked/accounting.h"

namespace xenbaked::engine_detail {

using tracefmt::Runstate;
namespace ev = tracefmt::ev;

constexpr uint32_t kDomainTableSize = uint32_t{ev::kMaxDomainId} + 1;
constexpr int32_t kNoSlot = -1;
constexpr uint32_t kNoDomain = 0xffffffff;
constexpr uint64_t kNoSlice = std::numeric_limits<uint64_t>::max();
constexpr int kNotTold = -1;  // CloseInterval: no record says which state the vCPU left

// Guest activity counts, kept where the hot path adds to them without asking first whether the
// record is any (it adds 0 or 1): a domain's, or a CPU's while nobody is known to run there.
struct Activity {
  uint64_t hypercalls = 0;
  uint64_t io_records = 0;
  uint64_t either = 0;  // records that were a hypercall, I/O or both

  Activity& operator+=(const Activity& o) {
    hypercalls += o.hypercalls;
    io_records += o.io_records;
    either += o.either;
    return *this;
  }
};

// Index of unknown time in VcpuState::ticks, after the four runstates.
constexpr size_t kUnknown = 4;

// A closed piece of a vCPU's interval in a state other than running that no CPU has vouched for
// yet. Xen writes TRC_LOST_RECORDS on a CPU only when space frees there, so in merged TSC order
// the report of a gap comes after the records other CPUs wrote during it: a record on CPU b can
// close a vCPU's runnable, blocked or offline interval at a TSC a loss on CPU c (not reported
// yet) already covers, though a wake, dispatch or pause of that vCPU may hide in the gap (all
// three may be written on c). So a piece is held until every CPU has been heard from past its
// end (a gap not reported yet begins after its CPU's last record), and a report that comes
// first turns the part of it the gap covers into unknown (RetractTails). Running time needs no
// holding: a running vCPU's changes are all written on the CPU it runs on, which vouches for it.
struct TailPiece {
  uint64_t from = 0;
  uint64_t to = 0;
  // How far a snapshot has published it (from..published): that part is never taken back (a
  // snapshot publishes only up to the oldest last record over the CPUs, before any gap still to
  // be reported).
  mutable uint64_t published = 0;
  uint32_t bucket = 0;  // Runstate: runnable, blocked or offline
  // Vouched for from its end only: the state a record says the vCPU left, read back to the end
  // of an earlier gap (CloseInterval). A change hidden in a later-reported gap anywhere in it
  // leaves the state before that gap unknown too, so it is credited all or nothing.
  bool backward = false;
};
// Pieces held per vCPU. A vCPU's pieces settle as soon as every CPU records past them, so more
// than a few wait only while some CPU stays silent (or loses everything); then the oldest is
// folded into the vCPU's TailOverflow.
constexpr uint8_t kTailPieces = 4;

// Older pieces folded together when a vCPU has more waiting than kTailPieces: their times per
// state over the span they cover, no longer where in it. Credited in full once every CPU has
// recorded past its end (so a capture read whole comes out exact), and a report covering any of
// it takes from each state at most the length covered, counted from the span's start (which
// covers a piece read back from its end as well): sound, and only as tight as the span allows.
struct TailOverflow {
  uint64_t from = 0;
  uint64_t to = 0;                  // from == to: empty
  std::array<uint64_t, 3> ticks{};  // runnable, blocked, offline
  mutable bool published = false;   // a snapshot published it whole (never taken back then)
  bool empty() const { return to == from; }
};

// A vCPU's time since its domain's origin is, at every instant, in exactly one bucket of
// `ticks`: a runstate, or unknown. The open interval starts at since_tsc; while `known` it is in
// `state`, otherwise unknown. `doubt_from`..`doubt_to` (when doubt_to > doubt_from) is a part of
// the open known interval a loss gap covered: a change may hide there, so it is unknown, and what
// comes after it is in whatever state the vCPU's next record says it left (see CloseInterval).
struct VcpuState {
  std::array<uint64_t, 5> ticks{};  // by Runstate, then kUnknown
  uint64_t since_tsc = 0;           // start of the open interval (valid when `seen`)
  uint64_t doubt_from = 0;
  uint64_t doubt_to = 0;
  // How far a snapshot has published the open interval: a later close never credits less than
  // that to what was published (totals only grow). Written by the const Snapshot.
  mutable uint64_t published_tsc = 0;
  uint64_t dispatches = 0;
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  uint32_t cpu = 0;  // physical CPU it last ran on
  Runstate state = Runstate::kOffline;
  bool known = false;          // `state` describes the open interval
  bool dispatch_seen = false;  // the open running interval began with a dispatch we saw
  bool seen = false;           // a record named it: its time is accounted from its domain's origin

  // A contradiction held back for the record it missed (see OnRunstateChange): the interval
  // link_since..link_at in link_from, published up to link_published, awaits a record of the
  // change link_from -> link_to stamped at most the reorder tolerance later.
  bool link_pending = false;
  Runstate link_from = Runstate::kOffline;
  Runstate link_to = Runstate::kOffline;
  uint32_t link_cpu = 0;
  uint64_t link_since = 0;
  uint64_t link_at = 0;
  uint64_t link_published = 0;

  // Held ends of closed intervals (TailPiece), kept last: the fields above are the ones every
  // record of the vCPU touches, and stay in the cache lines they had.
  uint8_t tail_head = 0;   // `tail` is a ring: its oldest piece
  uint8_t tail_count = 0;  // pieces held in `tail`
  std::array<TailPiece, kTailPieces> tail{};
  TailOverflow overflow;

  bool doubtful() const { return doubt_to > doubt_from; }
  // The i-th piece held, oldest first.
  TailPiece& Tail(uint8_t i) { return tail[(tail_head + i) % kTailPieces]; }
  const TailPiece& Tail(uint8_t i) const { return tail[(tail_head + i) % kTailPieces]; }
};

struct DomainState {
  uint32_t domid = 0;
  uint64_t instance = 0;
  bool in_use = false;  // holds an incarnation (live, or destroyed and not forgotten)
  bool destroyed = false;
  bool active = false;  // a record has named it since its DOM_ADD
  uint64_t first_seen_tsc = 0;
  uint64_t last_seen_tsc = 0;
  // Where its vCPUs' time starts: the DOM_ADD, or when none was seen the engine's first record
  // (the domain may be older than the trace); the time until a vCPU's first record is unknown.
  uint64_t origin_tsc = 0;
  uint64_t run_slices = 0;
  uint64_t slice_min_ticks = kNoSlice;
  uint64_t slice_max_ticks = 0;
  uint64_t slice_sum_ticks = 0;
  uint64_t allocated_ns = 0;  // SWITCH_INFNEXT gives ns already
  uint64_t allocations = 0;
  Activity activity;  // hypercalls and I/O records while it ran
  uint64_t lost_records = 0;
  // vCPU states by id: a dense table for ids below its size, and a map for the ids past what
  // the table may grow to. The table grows to at most twice the vCPUs named, so memory follows
  // the records given, not the largest id a (maybe hostile) record names.
  std::vector<VcpuState> vcpus;
  std::map<uint32_t, VcpuState> sparse_vcpus;
  uint32_t named_vcpus = 0;

  template <typename F>
  void ForEachVcpu(F&& f) {
    for (VcpuState& v : vcpus) f(v);
    for (auto& [id, v] : sparse_vcpus) f(v);
  }
};

struct CpuState {
  bool seen = false;        // a record with a TSC arrived
  bool dispatched = false;  // a dispatch on this CPU was seen
  uint64_t records = 0;
  uint64_t first_tsc = 0;
  uint64_t last_tsc = 0;
  // TSC of its last scheduler-group record (or its first record): the handlers' measure of how
  // far this CPU is heard from. (last_tsc may run ahead within a run of counted records, which
  // commute with other CPUs' records; this one is the same whichever way records come in.)
  uint64_t sched_tsc = 0;
  uint64_t first_dispatch_tsc = 0;
  uint64_t accounted_ticks = 0;
  uint64_t lost_records = 0;
  uint64_t lost_gap_ticks = 0;
  uint64_t wrap_records = 0;
  uint64_t hypercalls = 0;
  uint64_t io_records = 0;
  Activity unattributed;  // while no domain was known to run here (`either` is the count)
  // Counted since this CPU's last scheduler-group record and not yet attributed: the next one
  // (Dispatch) hands it to whoever runs here then. Holding it is what lets a run of these records
  // be counted in one go (AddActivityRun) with the result of counting them one by one.
  Activity pending;
  uint32_t current_domid = kNoDomain;  // who runs here, for hypercall/I/O attribution
  uint32_t current_vcpu = 0;
  int32_t current_slot = kNoSlot;        // its live slot (kNoSlot when unknown or destroyed)
  uint32_t announced_domid = kNoDomain;  // SWITCH_INFNEXT's unit, awaiting its dispatch

  void SetCurrent(uint32_t domid, uint32_t vcpu, int32_t slot) {
    current_domid = domid;
    current_vcpu = vcpu;
    current_slot = slot;
  }
  void ClearCurrent() { SetCurrent(kNoDomain, 0, kNoSlot); }
  uint64_t HeardUntil() const { return std::max(sched_tsc, first_tsc); }
};

}  // namespace xenbaked::engine_detail

namespace xenbaked {

struct AccountingEngine::Impl {
  using Activity = engine_detail::Activity;
  using VcpuState = engine_detail::VcpuState;
  using DomainState = engine_detail::DomainState;
  using CpuState = engine_detail::CpuState;
  using Runstate = tracefmt::Runstate;

  explicit Impl(const AccountingConfig& config)
      : clock(config.cpu_khz == 0 ? 1 : config.cpu_khz),
        slot_of_domid(engine_detail::kDomainTableSize, engine_detail::kNoSlot) {
    reorder_ticks = clock.ToTicks(10'000);
  }

  tracefmt::TscClock clock;
  std::vector<int32_t> slot_of_domid;
  std::vector<DomainState> slots;
  std::vector<int32_t> free_slots;  // of forgotten domains, for the next new one
  std::vector<CpuState> cpus;
  uint32_t cpu_count = 0;  // cpus.size(), kept apart: sizeof(CpuState) is no power of two
  std::function<void(const DomainTotals&)> on_final;
  // Records are counted per CPU (CpuState::records) and summed when asked for: one increment
  // less per record. Those naming an impossible CPU are counted here.
  uint64_t records_without_cpu = 0;
  uint64_t lost_records = 0;
  uint64_t epoch_tsc = 0;  // first TSC seen: engine time 0
  bool has_epoch = false;
  uint64_t now_tsc = 0;
  uint64_t next_instance = 1;
  AnomalyCounts anomalies;
  // Records from different CPUs out of TSC order by up to this are put in order (10 µs): Xen
  // writes a wake on the waker's CPU before the IPI that leads to the dispatch on another, so
  // the dispatch can precede the wake in TSC order only by the CPUs' TSC skew, which Xen keeps
  // well below a microsecond on hosts it trusts the TSC of; 10 µs is far below any scheduling
  // interval (credit2's rate limit is 1 ms), so no real sequence of changes is read as one.
  uint64_t reorder_ticks = 0;
  bool input_ended = false;  // EndOfInput: no record can come to contradict an open interval
  // A lower bound of the oldest CPUs' HeardUntil: a tail piece ending at or before it is vouched
  // for (no loss still to be reported can cover it). Refreshed only when a vCPU's tail is full,
  // at a domain's end and at a loss report, so the hot path never walks the CPUs.
  uint64_t heard_floor = 0;
  // By domid, between a DOM0_DOM_REM that ended a domain and the SCHED_DOM_REM Xen traces an RCU
  // grace period later, during which the id may be reused: `late_sched_rem` expects that record
  // (it must not end a new incarnation); `dying` holds until the id's next ADD (records of the
  // dying domain then must not start a phantom incarnation).
  std::vector<bool> late_sched_rem = std::vector<bool>(engine_detail::kDomainTableSize);
  std::vector<bool> dying = std::vector<bool>(engine_detail::kDomainTableSize);

  // R: DecodedView or tracefmt::RecordRef. The hot path, small enough to inline into a loop:
  // per-CPU bookkeeping and hypercalls here, every other event the engine uses in Dispatch.
  template <typename R>
  void Add(uint32_t cpu, uint64_t tsc, const R& rec);
  template <typename R>
  [[gnu::noinline]] void Dispatch(CpuState& c, uint32_t cpu, uint64_t tsc, const R& rec);
  [[gnu::noinline]] CpuState* GrowCpus(uint32_t cpu);
  [[gnu::noinline]] void FirstTsc(CpuState& c, uint64_t tsc);

  // --- per-record handlers ---
  void OnRunstateChange(CpuState& c, uint32_t cpu, uint64_t tsc, uint32_t event, uint32_t word);
  template <typename R>
  void OnSchedVerbose(CpuState& c, uint64_t tsc, const R& rec);
  template <typename R>
  void OnGen(CpuState& c, uint32_t cpu, uint64_t tsc, const R& rec);
  void OnLostRecords(CpuState& c, uint32_t cpu, uint64_t tsc, const tracefmt::LostRecords& lost);
  void OnDomainAdd(uint32_t domid, uint64_t tsc);
  // `from_dom0`: DOM0_DOM_REM (traced at destruction), else SCHED_DOM_REM (traced an RCU grace
  // period later, when the scheduler frees the domain).
  void OnDomainRemove(uint32_t domid, uint64_t tsc, bool from_dom0);
  void CountGuestActivity(CpuState& c, uint32_t hypercall, uint32_t io);
  void AttributePending(CpuState& c);
  // The run of records at the start of `bytes` that Add would only count (none of the
  // scheduler, GEN or dom0-op groups) and whose TSC is at most `limit`, on a CPU whose clock has
  // started: all counted in one pass, in registers, and added to `taken`. kLimited: whether
  // there is a limit to check (a whole capture has none).
  template <bool kLimited>
  void AddActivityRun(uint32_t cpu, std::span<const std::byte> bytes, uint64_t limit,
                      tracefmt::RunTaken& taken);
  tracefmt::RunTaken TakeRun(const tracefmt::RunOffer& offer);

  // --- state helpers ---
  DomainState* ActiveDomain(uint32_t domid, uint64_t tsc);
  VcpuState* ActiveVcpu(DomainState& d, uint32_t vcpu);
  [[gnu::noinline]] VcpuState* VcpuBeyondTable(DomainState& d, uint32_t vcpu);
  void StartIncarnation(DomainState& d, uint64_t tsc);
  // Ends v's open interval at `tsc` (at least where a snapshot published it to), crediting each
  // part to the bucket the trace vouches for. `told` is the state a record says the vCPU left
  // (kNotTold when none does: a loss, the domain's end). Returns where the interval ended.
  uint64_t CloseInterval(DomainState& d, VcpuState& v, uint32_t cpu, uint64_t tsc, int told,
                         bool completes_slice);
  // Credits from..to to `bucket`. A state other than running is credited at once only as far
  // as `vouched` (published, or before a contradiction's record) or every CPU's word reaches;
  // the rest is held as a tail piece (HoldTail).
  void Credit(DomainState& d, VcpuState& v, size_t bucket, uint64_t from, uint64_t to,
              uint32_t run_cpu, bool completes_slice, uint64_t vouched);
  void HoldTail(VcpuState& v, size_t bucket, uint64_t from, uint64_t to, uint64_t vouched,
                bool backward);
  // A full tail: settles what the CPUs vouch for, or folds the oldest piece into the overflow.
  [[gnu::noinline]] void MakeTailRoom(VcpuState& v);
  // How far piece `p` is vouched for when every CPU has recorded past `heard`.
  static uint64_t VouchedUntil(const engine_detail::TailPiece& p, uint64_t heard);
  // Credits in full the pieces that end at or before `heard` (every CPU recorded past them).
  static void SettleTails(VcpuState& v, uint64_t heard);
  // Credits every piece as far as `heard` or its publication reaches, the rest to unknown: no
  // report can come later to tell (the input ended: `heard` is the maximum; or the domain ends).
  static void CloseTails(VcpuState& v, uint64_t heard);
  // A loss from gap_from was reported at gap_to: the part of each piece the gap covers may have
  // hidden a change, and goes to unknown.
  static void RetractTails(VcpuState& v, uint64_t gap_from, uint64_t gap_to);
  // The oldest TSC every CPU heard from has recorded past (its scheduler-group records), at
  // most `cap`; also raises heard_floor to it.
  uint64_t RefreshHeardFloor(uint64_t cap);
  // Settles a held-back contradiction: the missed record came (`reordered`: stamped
  // `missed_tsc`, on `missed_cpu`), or not.
  void SettleLink(DomainState& d, VcpuState& v, bool reordered, uint64_t missed_tsc = 0,
                  uint32_t missed_cpu = 0);
  // A dispatch of v on `cpu`: counts, and who runs there.
  void Dispatched(CpuState& c, VcpuState& v, uint32_t cpu, uint64_t tsc, uint32_t domid,
                  uint32_t vcpu_id);
  // Starts an open interval at `tsc`: in `state`, or unknown when `known` is false.
  static void Open(VcpuState& v, uint64_t tsc, bool known, Runstate state);
  // The oldest last TSC over the CPUs heard from: a loss not yet reported began after it.
  uint64_t MinLastTsc(uint64_t fallback) const;
  void Finalize(DomainState& d, uint64_t tsc);

  // --- snapshot ---
  // `cpu_open` collects the open running intervals per CPU.
  // `min_last_tsc`: MinLastTsc at the snapshot.
  DomainTotals Totals(const DomainState& d, uint64_t tsc, uint64_t min_last_tsc,
                      std::vector<uint64_t>* cpu_open) const;
  // Adds to `ticks` the part of v's open interval up to `tsc` that no record still to come can
  // contradict, and notes how far it published (VcpuState::published_tsc).
  void PublishOpen(const VcpuState& v, uint64_t tsc, uint64_t min_last_tsc,
                   std::array<uint64_t, 5>& ticks, std::vector<uint64_t>* cpu_open) const;
  uint64_t Records() const {
    uint64_t n = records_without_cpu;
    for (const CpuState& c : cpus) n += c.records;
    return n;
  }
  uint64_t EngineNs(uint64_t tsc) const {
    return tsc > epoch_tsc ? clock.ToNs(tsc - epoch_tsc) : 0;
  }
};

}  // namespace xenbaked
