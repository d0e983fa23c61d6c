// The accounting engine: per-vCPU runstate machines over merged trace records.
//
// Hot path: Add()/AddRaw() is called once per record, most of which are not scheduler records
// (hypercalls, credit2 bookkeeping, page faults, HVM exits). It costs one per-CPU bookkeeping
// step, the hypercall test and one table lookup on the event's class+subclass; only scheduler, GEN,
// dom0-op and I/O records go further, and a handler loads only the data words it uses (AddRaw
// reads them in place, never copying the record). No allocation happens on the hot path except
// the first time a domain, vCPU or CPU is seen.
//
// Hypercall and I/O counts wait on their CPU (CpuState::pending) until its next scheduler-group
// record, so a run of them commutes with other CPUs' records: AddAll counts a whole run in one
// loop (AddActivityRun) at the place of the scheduler record before it, with the results of
// Add record by record. A scheduler record that ends a run is taken there too while its CPU
// leads the merge (RunOffer::lead), so only a change of CPU goes back to the merge.
//
// Storage is flat: a domid-indexed table of slot numbers, slots in one vector, each with a small
// vector of vCPU states. Times are kept in TSC ticks and converted at Snapshot.
#include "xenbaked/accounting.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>

#include "tracefmt/clock.h"

namespace xenbaked {
namespace {

using tracefmt::Runstate;
namespace ev = tracefmt::ev;

constexpr uint32_t kDomainTableSize = uint32_t{ev::kMaxDomainId} + 1;
constexpr int32_t kNoSlot = -1;
constexpr uint32_t kNoDomain = 0xffffffff;
constexpr uint64_t kNoSlice = std::numeric_limits<uint64_t>::max();
constexpr int kNotTold = -1;  // CloseInterval: no record says which state the vCPU left

// Class+subclass (event bits 12–27) of the events the engine looks at.
constexpr uint32_t Group(uint32_t event) {
  // Masked: an event id is 28 bits in a record, but a Record handed to Add may hold anything.
  return (event >> ev::kSubclassShift) & 0xffffu;
}
constexpr uint32_t kGroupGen = Group(ev::kGen);
constexpr uint32_t kGroupSchedMin = Group(ev::kSchedMin);
constexpr uint32_t kGroupSchedVerbose = Group(ev::kSchedVerbose);
constexpr uint32_t kGroupDom0 = Group(ev::kDom0DomOps);
constexpr uint32_t kGroupHvmHandler = Group(ev::kHvmHandler);
constexpr uint32_t kGroupMem = Group(ev::kMem);

// Read access to a record's fields, the same for a decoded tracefmt::Record as for a
// tracefmt::RecordRef left in place: the handlers below are written once, for both.
struct DecodedView {
  const tracefmt::Record& rec;
  uint32_t event() const { return rec.event; }
  uint32_t extra_words() const { return rec.extra_words; }
  bool has_tsc() const { return rec.has_tsc; }
  uint32_t Extra(uint32_t i) const { return rec.extra[i]; }
  uint32_t FirstExtraOrZero() const { return rec.extra_words != 0 ? rec.extra[0] : 0; }
};

static_assert(Group(ev::kHvmIoRead) == kGroupHvmHandler &&
                  Group(ev::kHvmIoWrite) == kGroupHvmHandler &&
                  Group(ev::kHvmIoportRead) == kGroupHvmHandler &&
                  Group(ev::kHvmIoportWrite) == kGroupHvmHandler &&
                  Group(ev::kHvmIomemRead) == kGroupHvmHandler &&
                  Group(ev::kHvmIomemWrite) == kGroupHvmHandler &&
                  Group(ev::kMemPageGrantMap) == kGroupMem &&
                  Group(ev::kMemPageGrantUnmap) == kGroupMem &&
                  Group(ev::kMemPageGrantTransfer) == kGroupMem,
              "the hot path looks for I/O events by id only in these two groups");

// The place of a record's first data word, by the header's top four bits (the TSC flag and the
// number of data words); for a record without one, the header itself: read as a hypercall's
// first word it names no I/O call (the static_assert), as FirstExtraOrZero's 0 does not.
constexpr std::array<uint8_t, 16> kWord0AtByTop = [] {
  std::array<uint8_t, 16> at{};
  for (uint32_t top = 0; top < 16; ++top) {
    const bool has_words = (top & 7) != 0;
    at[top] = !has_words ? 0 : (top & 8) != 0 ? 12 : 4;
  }
  return at;
}();
static_assert(!tracefmt::IsIoHypercallWord(ev::kPvHypercall) &&
                  !tracefmt::IsIoHypercallWord(ev::kPvHypercallV2) &&
                  !tracefmt::IsIoHypercallWord(ev::kPvHypercallSubcall),
              "a hypercall record without data words must not read as I/O from its header");

// tracefmt::IsHypercallEvent in one load and one compare: the three hypercall events differ in
// their low byte, so a table by low byte names the only hypercall event a record could be.
constexpr std::array<uint32_t, 256> kHypercallByLowByte = [] {
  std::array<uint32_t, 256> table{};
  table.fill(~uint32_t{0});  // no 28-bit event id
  for (uint32_t event : {ev::kPvHypercall, ev::kPvHypercallV2, ev::kPvHypercallSubcall})
    table[event & 0xff] = event;
  return table;
}();
static_assert((ev::kPvHypercall & 0xff) != (ev::kPvHypercallV2 & 0xff) &&
                  (ev::kPvHypercall & 0xff) != (ev::kPvHypercallSubcall & 0xff) &&
                  (ev::kPvHypercallV2 & 0xff) != (ev::kPvHypercallSubcall & 0xff),
              "kHypercallByLowByte needs the hypercall events' low bytes distinct");
[[gnu::always_inline]] inline uint32_t IsHypercallEventFast(uint32_t event) {
  return kHypercallByLowByte[event & 0xff] == event ? 1u : 0u;
}

// What the engine does with a record, by its group, in one load: Dispatch takes the scheduler,
// GEN and dom0-op groups; every other record is only counted, and in two groups (the
// static_assert above) whether it is I/O is told by its event id. 64 KiB, of which a capture
// touches a few lines.
constexpr uint8_t kGroupCounted = 0;
constexpr uint8_t kGroupDispatched = 1;
constexpr uint8_t kGroupIoById = 2;
constexpr std::array<uint8_t, 1u << 16> kGroupKinds = [] {
  std::array<uint8_t, 1u << 16> kinds{};
  for (uint32_t group : {kGroupSchedMin, kGroupSchedVerbose, kGroupGen, kGroupDom0})
    kinds[group] = kGroupDispatched;
  kinds[kGroupHvmHandler] = kGroupIoById;
  kinds[kGroupMem] = kGroupIoById;
  return kinds;
}();

// How far ahead of the run loop the capture is asked for: the hardware prefetcher stops at each
// 4 KiB page, so without this the walk waits on memory at every page it enters.
constexpr uintptr_t kRunPrefetchAhead = 1024;

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

  bool doubtful() const { return doubt_to > doubt_from; }
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

}  // namespace

struct AccountingEngine::Impl {
  explicit Impl(const AccountingConfig& config)
      : clock(config.cpu_khz == 0 ? 1 : config.cpu_khz), slot_of_domid(kDomainTableSize, kNoSlot) {}

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
  bool input_ended = false;  // EndOfInput: no record can come to contradict an open interval
  // By domid, between a DOM0_DOM_REM that ended a domain and the SCHED_DOM_REM Xen traces an RCU
  // grace period later, during which the id may be reused: `late_sched_rem` expects that record
  // (it must not end a new incarnation); `dying` holds until the id's next ADD (records of the
  // dying domain then must not start a phantom incarnation).
  std::vector<bool> late_sched_rem = std::vector<bool>(kDomainTableSize);
  std::vector<bool> dying = std::vector<bool>(kDomainTableSize);

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
  void Credit(DomainState& d, VcpuState& v, size_t bucket, uint64_t from, uint64_t to,
              uint32_t run_cpu, bool completes_slice);
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

// ------------------------------------------------------------------------------------------------
// Hot path

// Called for every record outside the dispatched groups, hypercall/I/O or not (then it adds
// zeros): a random mix of hypercalls and other records would mispredict a test first. The only
// branch, on whether someone is known to run here, goes the same way for long stretches.
inline void AccountingEngine::Impl::CountGuestActivity(CpuState& c, uint32_t hypercall,
                                                       uint32_t io) {
  c.hypercalls += hypercall;
  c.io_records += io;
  c.pending.hypercalls += hypercall;
  c.pending.io_records += io;
  c.pending.either += hypercall | io;
}

// Activity is attributed when the CPU's next scheduler-group record arrives (or the input ends),
// to whoever the engine holds as running there at that moment, before that record changes it:
// the records in between all ran under one dispatch. A domain destroyed meanwhile (its final
// record already out) is not charged: the activity counts as unattributed. Until then a
// snapshot shows it in the CPU's counts only, so a domain's counts never go down and its final
// record holds every one its interval records did.
inline void AccountingEngine::Impl::AttributePending(CpuState& c) {
  if (c.pending.either == 0) return;
  Activity& a = c.current_slot == kNoSlot ? c.unattributed : slots[c.current_slot].activity;
  a += c.pending;
  c.pending = Activity{};
}

CpuState* AccountingEngine::Impl::GrowCpus(uint32_t cpu) {
  if (cpu > kMaxCpuId) return nullptr;
  cpus.resize(cpu + 1);
  cpu_count = cpu + 1;
  return &cpus[cpu];
}

void AccountingEngine::Impl::FirstTsc(CpuState& c, uint64_t tsc) {
  c.seen = true;
  c.first_tsc = tsc;
  if (!has_epoch) {
    has_epoch = true;
    epoch_tsc = tsc;
  }
}

// Most records of a real capture are hypercalls (PV_HYPERCALL_V2, sub-calls) or events no
// accounting needs (credit2 bookkeeping, page faults, HVM exits): those are done here in a few
// instructions; scheduler, GEN and dom0-op records go on to Dispatch, and a handler loads only
// the data words it uses.
template <typename R>
[[gnu::always_inline]] inline void AccountingEngine::Impl::Add(uint32_t cpu, uint64_t tsc,
                                                               const R& rec) {
  CpuState* cp = cpu < cpu_count ? &cpus[cpu] : GrowCpus(cpu);
  if (cp == nullptr) [[unlikely]] {
    ++records_without_cpu;
    ++anomalies.bad_id;
    return;
  }
  CpuState& c = *cp;
  ++c.records;
  // Records without a TSC (WRAP padding, a few HVM records) carry their CPU's last TSC, which is
  // 0 before the CPU's first timed record: they must not start the clock.
  if (rec.has_tsc()) [[likely]] {
    if (!c.seen) [[unlikely]]
      FirstTsc(c, tsc);
    c.last_tsc = tsc;
    now_tsc = std::max(now_tsc, tsc);
  }
  const uint32_t event = rec.event();
  const uint8_t kind = kGroupKinds[Group(event)];
  if (kind == kGroupDispatched) [[unlikely]] {
    Dispatch(c, cpu, tsc, rec);
    return;
  }
  // Bitwise, not short-circuit: no branch on the event mix. A record without extra words reads
  // word 0 as 0, which names no I/O hypercall.
  const uint32_t hypercall = IsHypercallEventFast(event);
  uint32_t io = hypercall & tracefmt::IsIoHypercallWord(rec.FirstExtraOrZero());
  if (kind == kGroupIoById) [[unlikely]]
    io = tracefmt::IsIoEventId(event);
  CountGuestActivity(c, hypercall, io);
}

tracefmt::RunTaken AccountingEngine::Impl::TakeRun(const tracefmt::RunOffer& offer) {
  const std::byte* const data = offer.bytes.data();
  const size_t size = offer.bytes.size();
  tracefmt::RunTaken taken{.bytes = 0, .records = 0, .last_tsc = offer.tsc};
  uint64_t head_tsc = offer.tsc;
  // Each head is added as Add would, then the records after it that are only counted; a record
  // that stops that (most often this CPU's next scheduler record) is taken as the next head
  // when this CPU still leads the merge, so a burst of scheduler records on one CPU costs no
  // return to the merge per record.
  for (;;) {
    const tracefmt::RecordRef head{tracefmt::Load32(data + taken.bytes), data + taken.bytes};
    Add(offer.cpu, head_tsc, head);
    taken.bytes += head.SizeBytes();
    ++taken.records;
    taken.last_tsc = head_tsc;
    if (size - taken.bytes < tracefmt::kMinRecordBytes) break;
    uint32_t header = tracefmt::Load32(data + taken.bytes);
    if (kGroupKinds[Group(tracefmt::HeaderEvent(header))] != kGroupDispatched) {
      const std::span<const std::byte> rest = offer.bytes.subspan(taken.bytes);
      if (offer.limit == ~uint64_t{0})
        AddActivityRun<false>(offer.cpu, rest, offer.limit, taken);
      else
        AddActivityRun<true>(offer.cpu, rest, offer.limit, taken);
      if (size - taken.bytes < tracefmt::kMinRecordBytes) break;
      header = tracefmt::Load32(data + taken.bytes);
    }
    if (size - taken.bytes < tracefmt::RecordBytesFromHeader(header)) break;  // cut short
    head_tsc =
        tracefmt::HeaderHasTsc(header) ? tracefmt::Load64(data + taken.bytes + 4) : taken.last_tsc;
    if (head_tsc >= offer.lead || head_tsc > offer.limit) break;
  }
  return taken;
}

template <bool kLimited>
void AccountingEngine::Impl::AddActivityRun(uint32_t cpu, std::span<const std::byte> bytes,
                                            uint64_t limit, tracefmt::RunTaken& taken) {
  // A CPU's first timed record starts its clock (and maybe the engine's) where the merge puts
  // it: Add takes it, and whatever comes before it, one by one.
  if (cpu >= cpu_count || !cpus[cpu].seen) [[unlikely]]
    return;
  const std::byte* const data = bytes.data();
  const std::byte* const end = data + bytes.size();
  // While p is below this, a largest record's worth of bytes is left: no record can run past
  // the end.
  const std::byte* const roomy_end = data + (bytes.size() >= tracefmt::kMaxRecordBytes
                                                 ? bytes.size() - tracefmt::kMaxRecordBytes + 1
                                                 : 0);
  const std::byte* p = data;
  uint64_t tsc = taken.last_tsc;
  // Few enough sums to stay in registers. A record is I/O by its id (HVM emulation, grants) or
  // as a hypercall on an event channel or grant table, never both, so "hypercall or I/O" is
  // hypercalls + I/O by id.
  uint64_t records = 0;
  uint64_t hypercalls = 0;
  uint64_t io_hypercalls = 0;
  uint64_t io_by_id = 0;
  // Counts the record at `p` and steps past it; false (nothing counted) at one Dispatch takes.
  // `word0` is the record's first data word, or a word naming no I/O call when it has none.
  auto take = [&](uint32_t header, uint32_t word0) __attribute__((always_inline)) {
    const uint32_t event = tracefmt::HeaderEvent(header);
    const uint8_t kind = kGroupKinds[Group(event)];
    // One test for both rare kinds on the way of every record.
    if (kind != kGroupCounted) [[unlikely]] {
      if (kind == kGroupDispatched) return false;
      if (kLimited && tracefmt::HeaderHasTsc(header) && tracefmt::Load64(p + 4) > limit)
        return false;  // checked again below; here so that io_by_id counts only what is taken
      io_by_id += tracefmt::IsIoEventId(event);
    }
    // The step to the next record is on the chain from one record to the next: its fixed part
    // comes from this (well predicted) branch, not from the header, so only the data words'
    // bytes wait on the header's load.
    size_t fixed_bytes = 4;
    if (tracefmt::HeaderHasTsc(header)) [[likely]] {
      const uint64_t own = tracefmt::Load64(p + 4);
      if (kLimited && own > limit) [[unlikely]]
        return false;  // past the caller's window boundary or watermark: not taken
      tsc = own;
      fixed_bytes = 12;
    }
    const uint32_t hypercall = IsHypercallEventFast(event);
    hypercalls += hypercall;
    io_hypercalls += hypercall & static_cast<uint32_t>(tracefmt::IsIoHypercallWord(word0));
    ++records;
    // The empty asm keeps the compiler from adding the two parts first, which would put the
    // fixed part back on the chain. (header >> 26) & 28 is 4 × the count of data words.
    const std::byte* after_fixed = p + fixed_bytes;
    asm("" : "+r"(after_fixed));
    p = after_fixed + ((header >> 26) & 28u);
    return true;
  };
  // The caller vouched for the first record only: every size is checked on the way.
  while (p < roomy_end) {
    // An address, not a pointer into the capture: it may lie past the end.
    __builtin_prefetch(
        reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + kRunPrefetchAhead));
    const uint32_t header = tracefmt::Load32(p);
    const uint32_t top = header >> 28;  // the TSC flag and the count of data words
    if (!take(header, tracefmt::Load32(p + kWord0AtByTop[top]))) break;
  }
  // The last few records of the chunk: each checked, and one cut short ends the run (the merge
  // reports it).
  while (p >= roomy_end && end - p >= tracefmt::kMinRecordBytes) {
    const uint32_t header = tracefmt::Load32(p);
    if (static_cast<size_t>(end - p) < tracefmt::RecordBytesFromHeader(header)) break;
    if (!take(header, tracefmt::RecordRef{header, p}.FirstExtraOrZero())) break;
  }
  if (records == 0) return;
  CpuState& c = cpus[cpu];
  c.records += records;
  c.last_tsc = tsc;
  now_tsc = std::max(now_tsc, tsc);
  const Activity activity{hypercalls, io_hypercalls + io_by_id, hypercalls + io_by_id};
  c.hypercalls += activity.hypercalls;
  c.io_records += activity.io_records;
  c.pending += activity;
  taken.bytes += static_cast<size_t>(p - data);
  taken.records += records;
  taken.last_tsc = tsc;
}

template <typename R>
void AccountingEngine::Impl::Dispatch(CpuState& c, uint32_t cpu, uint64_t tsc, const R& rec) {
  AttributePending(c);
  c.sched_tsc = std::max(c.sched_tsc, tsc);
  const uint32_t event = rec.event();
  switch (Group(event)) {
    case kGroupSchedMin:
      if (tracefmt::IsRunstateChange(event) && rec.extra_words() >= 1)
        OnRunstateChange(c, cpu, tsc, event, rec.Extra(0));
      return;
    case kGroupSchedVerbose:
      OnSchedVerbose(c, tsc, rec);
      return;
    case kGroupGen:
      OnGen(c, cpu, tsc, rec);
      return;
    case kGroupDom0:
      if (rec.extra_words() >= 1) {
        if (event == ev::kDom0DomAdd) OnDomainAdd(rec.Extra(0), tsc);
        if (event == ev::kDom0DomRem) OnDomainRemove(rec.Extra(0), tsc, /*from_dom0=*/true);
      }
      return;
    default:
      return;
  }
}

void AccountingEngine::Impl::OnRunstateChange(CpuState& c, uint32_t cpu, uint64_t tsc,
                                              uint32_t event, uint32_t word) {
  const uint32_t domid = word >> 16;
  const uint32_t vcpu_id = word & 0xffff;
  const auto old_state = static_cast<Runstate>((event >> 8) & 3);
  const auto new_state = static_cast<Runstate>((event >> 4) & 3);
  DomainState* d = ActiveDomain(domid, tsc);
  if (d == nullptr) return;
  VcpuState* v = ActiveVcpu(*d, vcpu_id);
  if (v == nullptr) return;

  if (v->known && v->state == old_state && !v->doubtful() && tsc >= v->since_tsc) [[likely]] {
    const uint64_t at = CloseInterval(*d, *v, cpu, tsc, static_cast<int>(old_state),
                                      /*completes_slice=*/true);
    Open(*v, at, /*known=*/true, new_state);
  } else {
    if (tsc < v->since_tsc) {
      // Older than the interval it closes (out of order by more than the merge put right): the
      // interval it opens starts where the old one ended, so no time is counted twice.
      ++anomalies.time_backwards;
    } else if (v->known && v->state != old_state) {
      // The chain broke (lost or reordered records): see CloseInterval for what is kept.
      ++anomalies.runstate_mismatch;
      if (v->state == Runstate::kRunning && cpus[v->cpu].current_domid == domid &&
          cpus[v->cpu].current_vcpu == vcpu_id)
        cpus[v->cpu].ClearCurrent();
    }
    const uint64_t at = CloseInterval(*d, *v, cpu, tsc, static_cast<int>(old_state),
                                      /*completes_slice=*/true);
    Open(*v, at, /*known=*/true, new_state);
  }
  v->dispatch_seen = new_state == Runstate::kRunning;
  if (new_state == Runstate::kRunning) {
    ++v->dispatches;
    v->cpu = cpu;
    if (c.announced_domid != kNoDomain && c.announced_domid != domid) ++anomalies.switch_mismatch;
    c.announced_domid = kNoDomain;
    c.SetCurrent(domid, vcpu_id, slot_of_domid[domid]);
    if (!c.dispatched) {
      c.dispatched = true;
      c.first_dispatch_tsc = tsc;
    }
  }
}

template <typename R>
void AccountingEngine::Impl::OnSchedVerbose(CpuState& c, uint64_t tsc, const R& rec) {
  const uint32_t words = rec.extra_words();
  if (words < 1) return;
  const uint32_t event = rec.event();
  switch (event) {
    case ev::kWake:
    case ev::kBlock: {
      if (words < 2) return;
      DomainState* d = ActiveDomain(rec.Extra(0), tsc);
      if (d == nullptr) return;
      VcpuState* v = ActiveVcpu(*d, rec.Extra(1));
      if (v == nullptr) return;
      if (event == ev::kWake)
        ++v->wakes;
      else
        ++v->blocks;
      return;
    }
    case ev::kSwitchInfNext: {
      if (words < 4) return;
      const uint32_t domid = rec.Extra(0);
      DomainState* d = ActiveDomain(domid, tsc);
      if (d == nullptr) return;
      const uint32_t next_time = rec.Extra(3);
      if (next_time != ev::kNoTimeLimit) {
        d->allocated_ns += next_time;
        ++d->allocations;
      }
      c.announced_domid = domid;
      c.SetCurrent(domid, rec.Extra(1), slot_of_domid[domid]);
      return;
    }
    case ev::kDomAdd:
      OnDomainAdd(rec.Extra(0), tsc);
      return;
    case ev::kDomRem:
      OnDomainRemove(rec.Extra(0), tsc, /*from_dom0=*/false);
      return;
    default:
      return;
  }
}

template <typename R>
void AccountingEngine::Impl::OnGen(CpuState& c, uint32_t cpu, uint64_t tsc, const R& rec) {
  const uint32_t event = rec.event();
  if (event == ev::kWrapBuffer) {
    ++c.wrap_records;
    return;
  }
  // As tracefmt::AsLostRecords reads it.
  if (event != ev::kLostRecords || rec.extra_words() < 4) return;
  const uint32_t who = rec.Extra(1);
  OnLostRecords(c, cpu, tsc,
                tracefmt::LostRecords{rec.Extra(0), static_cast<uint16_t>(who & 0xffff),
                                      static_cast<uint16_t>(who >> 16),
                                      uint64_t{rec.Extra(2)} | (uint64_t{rec.Extra(3)} << 32)});
}

void AccountingEngine::Impl::OnLostRecords(CpuState& c, uint32_t cpu, uint64_t tsc,
                                           const tracefmt::LostRecords& lost) {
  c.lost_records += lost.count;
  lost_records += lost.count;
  // The gap inside this CPU's own span: a CPU whose stream starts with the report (buffers full
  // since boot) has none.
  const uint64_t gap_start = std::max(lost.first_tsc, c.first_tsc);
  const uint64_t gap_ticks = tsc > gap_start ? tsc - gap_start : 0;
  c.lost_gap_ticks += gap_ticks;
  if (gap_ticks > 0) {
    // Which vCPUs the gap can have hidden a change of follows from where Xen writes each record:
    // schedule() on a CPU writes the runstate changes of the vCPU it switches out and the one it
    // switches in; a wake (blocked or offline to runnable) is written on the waker's CPU, and a
    // pause on the caller's, either of which may be this one.
    //  - A vCPU running here may have been switched out in the gap: its running time ends at the
    //    first lost TSC and its time is unknown until a record names it again.
    //  - A vCPU running on another CPU is untouched: its own switch-out, block or pause would
    //    have been written there, and that CPU lost nothing.
    //  - A vCPU not running may have been woken, paused, or dispatched here and switched out
    //    again within the gap: the part of its interval the gap covers is in doubt. After the
    //    gap every change of it is recorded, so its next record's old state tells where it was
    //    from the gap's end on (CloseInterval).
    for (DomainState& d : slots) {
      if (!d.in_use || d.destroyed) continue;
      d.ForEachVcpu([&](VcpuState& v) {
        if (!v.seen || !v.known) return;  // unknown time stays unknown
        const uint64_t from = std::max({gap_start, v.since_tsc, v.published_tsc});
        if (v.state == Runstate::kRunning) {
          if (v.cpu != cpu) return;
          const uint64_t at = CloseInterval(d, v, cpu, from, kNotTold, /*completes_slice=*/false);
          Open(v, at, /*known=*/false, Runstate::kOffline);
        } else if (tsc > from) {
          v.doubt_from = v.doubtful() ? std::min(v.doubt_from, from) : from;
          v.doubt_to = std::max(v.doubt_to, tsc);
        }
      });
    }
    c.ClearCurrent();
    c.announced_domid = kNoDomain;
  }
  DomainState* d = ActiveDomain(lost.domain, tsc);
  if (d == nullptr) return;
  d->lost_records += lost.count;
  if (c.current_domid == kNoDomain)  // the record names who runs here now
    c.SetCurrent(lost.domain, lost.vcpu, slot_of_domid[lost.domain]);
  // Xen names the vCPU current when space freed: after a gap in mid-stream, that is who runs
  // here from the report on, whatever stale state we had for it. (At the start of a stream the
  // first-change rule stands: nothing is known before it.)
  if (gap_ticks == 0) return;
  VcpuState* v = ActiveVcpu(*d, lost.vcpu);
  if (v == nullptr) return;
  const uint64_t at = CloseInterval(*d, *v, cpu, tsc, kNotTold, /*completes_slice=*/false);
  Open(*v, at, /*known=*/true, Runstate::kRunning);
  v->dispatch_seen = false;
  v->cpu = cpu;
}

// ------------------------------------------------------------------------------------------------
// Domains and vCPUs

// The live incarnation of `domid`, creating one when the id is new or its last incarnation was
// destroyed (a reused id whose DOM_ADD we did not see). Null for ids Xen never schedules.
DomainState* AccountingEngine::Impl::ActiveDomain(uint32_t domid, uint64_t tsc) {
  if (domid >= kDomainTableSize) [[unlikely]] {
    ++anomalies.bad_id;
    return nullptr;
  }
  int32_t slot = slot_of_domid[domid];
  if (slot == kNoSlot) [[unlikely]] {
    if (free_slots.empty()) {
      slot = static_cast<int32_t>(slots.size());
      slots.emplace_back();
    } else {
      slot = free_slots.back();  // not in use: StartIncarnation below makes it fresh
      free_slots.pop_back();
    }
    slots[slot].domid = domid;
    slot_of_domid[domid] = slot;
  }
  DomainState& d = slots[slot];
  if (!d.in_use || d.destroyed) [[unlikely]] {
    if (dying[domid]) return nullptr;  // its last records, after DOM0_DOM_REM: not a new domain
    StartIncarnation(d, tsc);
  }
  d.active = true;
  d.last_seen_tsc = tsc;
  return &d;
}

VcpuState* AccountingEngine::Impl::ActiveVcpu(DomainState& d, uint32_t vcpu) {
  VcpuState* v = vcpu < d.vcpus.size() ? &d.vcpus[vcpu] : VcpuBeyondTable(d, vcpu);
  if (v == nullptr) return nullptr;
  if (!v->seen) [[unlikely]] {
    // Its time counts from its domain's origin; until its first record it is unknown.
    ++d.named_vcpus;
    v->seen = true;
    Open(*v, d.origin_tsc, /*known=*/false, Runstate::kOffline);
  }
  return v;
}

VcpuState* AccountingEngine::Impl::VcpuBeyondTable(DomainState& d, uint32_t vcpu) {
  if (vcpu > kMaxVcpuId) {
    ++anomalies.bad_id;
    return nullptr;
  }
  // Xen numbers a domain's vCPUs from 0, so the table covers a real domain as its vCPUs are
  // named; an id far past the ones named goes to the map.
  const size_t table_limit = 2 * (size_t{d.named_vcpus} + 1);
  if (vcpu >= table_limit) return &d.sparse_vcpus[vcpu];
  d.vcpus.resize(vcpu + 1);
  // Ids the table now covers move in from the map (nothing points into either here).
  while (!d.sparse_vcpus.empty() && d.sparse_vcpus.begin()->first <= vcpu) {
    auto node = d.sparse_vcpus.extract(d.sparse_vcpus.begin());
    d.vcpus[node.key()] = node.mapped();
  }
  return &d.vcpus[vcpu];
}

void AccountingEngine::Impl::StartIncarnation(DomainState& d, uint64_t tsc) {
  const uint32_t domid = d.domid;
  std::vector<VcpuState> vcpus = std::move(d.vcpus);  // keep the allocation
  vcpus.clear();
  d = DomainState{};
  d.domid = domid;
  d.vcpus = std::move(vcpus);
  d.instance = next_instance++;
  d.in_use = true;
  d.first_seen_tsc = tsc;
  d.last_seen_tsc = tsc;
  d.origin_tsc = has_epoch ? epoch_tsc : tsc;  // engine time starts at its first record
}

void AccountingEngine::Impl::Open(VcpuState& v, uint64_t tsc, bool known, Runstate state) {
  v.known = known;
  v.state = state;
  v.since_tsc = tsc;
  v.published_tsc = tsc;
  v.doubt_from = 0;
  v.doubt_to = 0;
}

inline void AccountingEngine::Impl::Credit(DomainState& d, VcpuState& v, size_t bucket,
                                           uint64_t from, uint64_t to, uint32_t run_cpu,
                                           bool completes_slice) {
  if (to <= from) return;
  const uint64_t ticks = to - from;
  v.ticks[bucket] += ticks;
  if (bucket != static_cast<size_t>(Runstate::kRunning)) return;
  if (run_cpu < cpu_count) cpus[run_cpu].accounted_ticks += ticks;
  if (!completes_slice || !v.dispatch_seen) return;
  ++d.run_slices;
  d.slice_sum_ticks += ticks;
  d.slice_min_ticks = std::min(d.slice_min_ticks, ticks);
  d.slice_max_ticks = std::max(d.slice_max_ticks, ticks);
}

uint64_t AccountingEngine::Impl::CloseInterval(DomainState& d, VcpuState& v, uint32_t cpu,
                                               uint64_t tsc, int told, bool completes_slice) {
  // What a snapshot published stays published: the interval ends no earlier than that.
  const uint64_t since = v.since_tsc;
  const uint64_t at = std::max({tsc, since, v.published_tsc});
  const size_t state = static_cast<size_t>(v.state);
  if (!v.known) {
    Credit(d, v, kUnknown, since, at, cpu, false);
  } else if (v.doubtful()) {
    // A loss gap covered doubt_from..doubt_to: before it the vCPU was in `state`; in it a change
    // may hide; after it every change was recorded, so the record's old state held from the
    // gap's end to the record (nothing tells it when the domain ends or another gap does).
    const uint64_t gap_from = std::clamp(v.doubt_from, since, at);
    const uint64_t gap_to = std::clamp(v.doubt_to, gap_from, at);
    Credit(d, v, state, since, gap_from, v.cpu, false);
    Credit(d, v, kUnknown, gap_from, gap_to, cpu, false);
    Credit(d, v, told == kNotTold ? kUnknown : static_cast<size_t>(told), gap_to, at, cpu, false);
  } else if (v.state == Runstate::kRunning && cpu != v.cpu) {
    // A record from another CPU ends a vCPU running on CPU c: its switch-out is written on c
    // (schedule() there), and c has delivered nothing since its last record, which the merge
    // would have put before this one. So c's records are missing from there on (a loss not
    // reported yet): running is vouched for up to c's last record, the rest is unknown.
    const uint64_t vouched =
        std::clamp(cpus[v.cpu].HeardUntil(), std::min(v.published_tsc, at), at);
    Credit(d, v, state, since, vouched, v.cpu, false);
    Credit(d, v, kUnknown, vouched, at, cpu, false);
  } else if (told == kNotTold || static_cast<size_t>(told) == state) {
    Credit(d, v, state, since, at, v.cpu, completes_slice);
  } else {
    // A contradiction no reported loss explains: the change it implies happened somewhere in
    // the interval, so all of it is unknown but what a snapshot already published (a total
    // never goes down; the snapshot published only what no report then pending could undo).
    const uint64_t published = std::clamp(v.published_tsc, since, at);
    Credit(d, v, state, since, published, v.cpu, false);
    Credit(d, v, kUnknown, published, at, cpu, false);
  }
  return at;
}

void AccountingEngine::Impl::OnDomainAdd(uint32_t domid, uint64_t tsc) {
  if (domid >= kDomainTableSize) {
    ++anomalies.bad_id;
    return;
  }
  dying[domid] = false;  // whatever comes now is the new domain's
  const int32_t slot = slot_of_domid[domid];
  if (slot != kNoSlot) {
    DomainState& d = slots[slot];
    // Xen traces both SCHED_DOM_ADD and DOM0_DOM_ADD for one creation: a second ADD with no
    // activity in between is the same domain.
    if (d.in_use && !d.destroyed && !d.active) return;
    // An ADD for a live domain means its REM was lost: the old incarnation ends here.
    if (d.in_use && !d.destroyed) Finalize(d, tsc);
  }
  DomainState* d = ActiveDomain(domid, tsc);
  d->active = false;
  d->origin_tsc = std::max(tsc, epoch_tsc);  // a new domain: its vCPUs have no time before
}

void AccountingEngine::Impl::OnDomainRemove(uint32_t domid, uint64_t tsc, bool from_dom0) {
  if (domid >= kDomainTableSize) {
    ++anomalies.bad_id;
    return;
  }
  if (!from_dom0 && late_sched_rem[domid]) {
    // The SCHED_DOM_REM of a domain DOM0_DOM_REM already ended: the id may name a new domain
    // by now, which this record must not end.
    late_sched_rem[domid] = false;
    dying[domid] = false;
    return;
  }
  const int32_t slot = slot_of_domid[domid];
  if (slot == kNoSlot) return;  // never seen alive: nothing to finalize
  DomainState& d = slots[slot];
  if (!d.in_use || d.destroyed) return;  // the second of SCHED_ and DOM0_DOM_REM
  Finalize(d, tsc);
  if (from_dom0) {
    late_sched_rem[domid] = true;
    dying[domid] = true;
  }
}

void AccountingEngine::Impl::Finalize(DomainState& d, uint64_t tsc) {
  // A change of a vCPU may still hide in a loss that began after the last record of a CPU
  // that could write it and is not reported yet (the report comes after the gap): its state
  // is vouched for only that far, as a snapshot's is (PublishOpen), and the rest to the end
  // is unknown.
  uint64_t min_heard = tsc;
  for (const CpuState& c : cpus)
    if (c.seen) min_heard = std::min(min_heard, c.HeardUntil());
  d.ForEachVcpu([&](VcpuState& v) {
    if (!v.seen) return;
    uint64_t vouched = tsc;
    if (!input_ended && v.known)
      vouched = v.state == Runstate::kRunning ? cpus[v.cpu].HeardUntil() : min_heard;
    const uint64_t at = CloseInterval(d, v, v.cpu, std::min(tsc, vouched), kNotTold,
                                      /*completes_slice=*/true);
    Open(v, at, /*known=*/false, v.state);
    Open(v, CloseInterval(d, v, v.cpu, tsc, kNotTold, false), /*known=*/false, v.state);
  });
  for (CpuState& c : cpus) {
    if (c.current_domid == d.domid) c.ClearCurrent();
    if (c.announced_domid == d.domid) c.announced_domid = kNoDomain;
  }
  d.destroyed = true;
  d.last_seen_tsc = std::max(d.last_seen_tsc, tsc);
  if (on_final) on_final(Totals(d, tsc, tsc, nullptr));
}

// ------------------------------------------------------------------------------------------------
// Snapshots

uint64_t AccountingEngine::Impl::MinLastTsc(uint64_t fallback) const {
  uint64_t min = ~uint64_t{0};
  for (const CpuState& c : cpus)
    if (c.seen) min = std::min(min, c.last_tsc);
  return min == ~uint64_t{0} ? fallback : min;
}

// An open interval is published only as far as nothing can still take it back (a published
// total never goes down, and must stay true). A loss on CPU c is reported after the fact, but
// it begins after the last record c delivered. So a vCPU running on c is vouched for up to c's
// last record; a vCPU not running, whose next change any CPU may write, up to the oldest last
// record over all CPUs; a loss gap already reported decides its part of the interval at once.
// Once the input has ended nothing can come: every interval runs to the snapshot.
void AccountingEngine::Impl::PublishOpen(const VcpuState& v, uint64_t tsc, uint64_t min_last_tsc,
                                         std::array<uint64_t, 5>& ticks,
                                         std::vector<uint64_t>* cpu_open) const {
  const bool running = v.known && v.state == Runstate::kRunning;
  uint64_t until = tsc;
  if (!input_ended) until = std::min(tsc, running ? cpus[v.cpu].last_tsc : min_last_tsc);
  until = std::max({until, v.since_tsc, v.published_tsc});
  const uint64_t since = v.since_tsc;
  const size_t state = static_cast<size_t>(v.state);
  if (!v.known) {
    ticks[kUnknown] += until - since;
  } else if (!v.doubtful()) {
    ticks[state] += until - since;
    if (running && cpu_open != nullptr) (*cpu_open)[v.cpu] += until - since;
  } else {
    // Before the gap: its state; the gap: unknown; after it the next record will tell, so it
    // waits (or, the input ended, nothing will: unknown).
    const uint64_t gap_from = std::clamp(v.doubt_from, since, until);
    const uint64_t gap_to = std::clamp(v.doubt_to, gap_from, until);
    ticks[state] += gap_from - since;
    ticks[kUnknown] += gap_to - gap_from;
    if (input_ended)
      ticks[kUnknown] += until - gap_to;
    else
      until = gap_to;
  }
  v.published_tsc = until;
}

DomainTotals AccountingEngine::Impl::Totals(const DomainState& d, uint64_t tsc,
                                            uint64_t min_last_tsc,
                                            std::vector<uint64_t>* cpu_open) const {
  DomainTotals t;
  t.domid = d.domid;
  t.instance = d.instance;
  t.destroyed = d.destroyed;
  t.first_seen_ns = EngineNs(d.first_seen_tsc);
  t.last_seen_ns = EngineNs(d.last_seen_tsc);
  t.run_slices = d.run_slices;
  t.slice_min_ns = d.run_slices == 0 ? 0 : clock.ToNs(d.slice_min_ticks);
  t.slice_max_ns = clock.ToNs(d.slice_max_ticks);
  t.slice_sum_ns = clock.ToNs(d.slice_sum_ticks);
  t.allocated_ns = d.allocated_ns;
  t.allocations = d.allocations;
  t.hypercalls = d.activity.hypercalls;
  t.io_records = d.activity.io_records;
  t.lost_records = d.lost_records;
  t.vcpus.reserve(d.vcpus.size() + d.sparse_vcpus.size());
  auto add = [&](uint32_t id, const VcpuState& v) {
    std::array<uint64_t, 5> ticks = v.ticks;
    if (v.seen && !d.destroyed) PublishOpen(v, tsc, min_last_tsc, ticks, cpu_open);
    VcpuTotals& vt = t.vcpus.emplace_back();
    vt.vcpu = id;
    vt.seen = v.seen;
    vt.running_ns = clock.ToNs(ticks[0]);
    vt.runnable_ns = clock.ToNs(ticks[1]);
    vt.blocked_ns = clock.ToNs(ticks[2]);
    vt.offline_ns = clock.ToNs(ticks[3]);
    vt.unknown_ns = clock.ToNs(ticks[kUnknown]);
    vt.dispatches = v.dispatches;
    vt.wakes = v.wakes;
    vt.blocks = v.blocks;
    vt.state = v.state;
    vt.last_cpu = v.cpu;
    t.running_ns += vt.running_ns;
    t.runnable_ns += vt.runnable_ns;
    t.blocked_ns += vt.blocked_ns;
    t.offline_ns += vt.offline_ns;
    t.unknown_ns += vt.unknown_ns;
    t.dispatches += vt.dispatches;
    t.wakes += vt.wakes;
    t.blocks += vt.blocks;
  };
  for (size_t i = 0; i < d.vcpus.size(); ++i) add(static_cast<uint32_t>(i), d.vcpus[i]);
  for (const auto& [id, v] : d.sparse_vcpus) add(id, v);
  return t;
}

// ------------------------------------------------------------------------------------------------
// Public interface

double CpuTotals::capture_ratio() const {
  const uint64_t expected = elapsed_ns > lost_gap_ns ? elapsed_ns - lost_gap_ns : 0;
  if (expected == 0) return 1.0;
  return static_cast<double>(accounted_ns) / static_cast<double>(expected);
}

AccountingEngine::AccountingEngine(const AccountingConfig& config)
    : impl_(std::make_unique<Impl>(config)) {}
AccountingEngine::~AccountingEngine() = default;

void AccountingEngine::Add(const tracefmt::MergedRecord& m) {
  impl_->Add(m.cpu, m.tsc, DecodedView{m.rec});
}
void AccountingEngine::Add(uint32_t cpu, uint64_t tsc, const tracefmt::Record& rec) {
  impl_->Add(cpu, tsc, DecodedView{rec});
}
void AccountingEngine::AddRaw(uint32_t cpu, uint64_t tsc, tracefmt::RecordRef rec) {
  impl_->Add(cpu, tsc, rec);
}
void AccountingEngine::AddAll(tracefmt::MergedTraceReader& merged) {
  // Each record that changes the accounting state (scheduler, GEN, dom0-op) comes through the
  // merge in TSC order, and takes with it the run of records after it that are only counted
  // (most of a capture: hypercalls until that CPU's next scheduler record), in one loop that
  // never looks at another CPU. They commute with other CPUs' records: what they add is held as
  // the CPU's pending activity until its next scheduler record (AttributePending).
  struct Sink {
    Impl& e;
    tracefmt::RunTaken Take(const tracefmt::RunOffer& offer) { return e.TakeRun(offer); }
  } sink{*impl_};
  merged.ForEachRun(sink);
  EndOfInput();
}

void AccountingEngine::EndOfInput() {
  impl_->input_ended = true;
  for (CpuState& c : impl_->cpus) impl_->AttributePending(c);
}

tracefmt::RunTaken AccountingEngine::TakeRun(const tracefmt::RunOffer& offer) {
  return impl_->TakeRun(offer);
}

AccountingSnapshot AccountingEngine::Snapshot(uint64_t tsc) const {
  const Impl& e = *impl_;
  AccountingSnapshot s;
  s.tsc = tsc;
  s.cpu_khz = e.clock.cpu_khz();
  s.at_ns = e.EngineNs(tsc);
  s.records = e.Records();
  s.lost_records = e.lost_records;
  s.anomaly_kinds = e.anomalies;
  s.anomalies = e.anomalies.total();
  std::vector<uint64_t> cpu_open(e.cpus.size(), 0);
  const uint64_t min_last_tsc = e.MinLastTsc(tsc);
  for (uint32_t domid = 0; domid < kDomainTableSize; ++domid) {
    const int32_t slot = e.slot_of_domid[domid];
    if (slot == kNoSlot || !e.slots[slot].in_use) continue;
    s.domains.push_back(e.Totals(e.slots[slot], tsc, min_last_tsc, &cpu_open));
  }
  for (uint32_t id = 0; id < e.cpus.size(); ++id) {
    const CpuState& c = e.cpus[id];
    if (c.records == 0) continue;
    CpuTotals& ct = s.cpus.emplace_back();
    ct.cpu = id;
    ct.records = c.records;
    ct.first_tsc = c.first_tsc;
    ct.last_tsc = c.last_tsc;
    if (c.seen) {
      const uint64_t end = std::max(c.last_tsc, tsc);
      ct.elapsed_ns = e.clock.ToNs(end - c.first_tsc);
      const uint64_t known_from = c.dispatched ? c.first_dispatch_tsc : end;
      ct.unknown_start_ns = e.clock.ToNs(known_from - c.first_tsc);
    }
    ct.accounted_ns = e.clock.ToNs(c.accounted_ticks + cpu_open[id]);
    ct.lost_records = c.lost_records;
    ct.lost_gap_ns = e.clock.ToNs(c.lost_gap_ticks);
    ct.wrap_records = c.wrap_records;
    ct.hypercalls = c.hypercalls;
    ct.io_records = c.io_records;
    ct.unattributed = c.unattributed.either;
  }
  return s;
}

uint64_t AccountingEngine::now_tsc() const {
  return impl_->now_tsc;
}
uint64_t AccountingEngine::records() const {
  return impl_->Records();
}
uint64_t AccountingEngine::TscToNs(uint64_t tsc) const {
  return impl_->EngineNs(tsc);
}
uint64_t AccountingEngine::NsToTsc(uint64_t engine_ns) const {
  return impl_->epoch_tsc + impl_->clock.ToTicks(engine_ns);
}
bool AccountingEngine::started() const {
  return impl_->has_epoch;
}

void AccountingEngine::OnFinal(std::function<void(const DomainTotals&)> callback) {
  impl_->on_final = std::move(callback);
}

void AccountingEngine::ForgetDestroyed() {
  Impl& e = *impl_;
  for (size_t slot = 0; slot < e.slots.size(); ++slot) {
    DomainState& d = e.slots[slot];
    if (!d.in_use || !d.destroyed) continue;
    d.in_use = false;
    d.vcpus.clear();
    d.sparse_vcpus.clear();
    // Finalize cleared every CPU's reference to it, so the slot can serve another id.
    e.slot_of_domid[d.domid] = kNoSlot;
    e.free_slots.push_back(static_cast<int32_t>(slot));
  }
}

EngineStateSizes AccountingEngine::StateSizes() const {
  const Impl& e = *impl_;
  EngineStateSizes s;
  s.domain_slots = e.slots.size();
  s.cpus = e.cpus.size();
  s.bytes = e.slot_of_domid.capacity() * sizeof(int32_t) +
            e.slots.capacity() * sizeof(DomainState) + e.free_slots.capacity() * sizeof(int32_t) +
            e.cpus.capacity() * sizeof(CpuState);
  for (const DomainState& d : e.slots) {
    s.domains_held += d.in_use ? 1 : 0;
    s.vcpu_states += d.vcpus.capacity() + d.sparse_vcpus.size();
    // A map node: the pair and about four words of tree links and colour.
    s.bytes += d.vcpus.capacity() * sizeof(VcpuState) +
               d.sparse_vcpus.size() * (sizeof(std::pair<const uint32_t, VcpuState>) + 32);
  }
  return s;
}

}  // namespace xenbaked
