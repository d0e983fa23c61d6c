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

#include "accounting_engine.h"
#include "tracefmt/clock.h"

namespace xenbaked {
namespace {

using tracefmt::Runstate;
namespace ev = tracefmt::ev;

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

}  // namespace

using namespace engine_detail;  // NOLINT: this engine's own state

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

// ------------------------------------------------------------------------------------------------
// Public interface

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
  // No record can come now to settle a held-back contradiction in order.
  for (DomainState& d : impl_->slots) {
    if (!d.in_use || d.destroyed) continue;
    d.ForEachVcpu([&](VcpuState& v) {
      if (v.link_pending) impl_->SettleLink(d, v, /*reordered=*/false);
      // No loss report can come now to take back a tail piece.
      impl_->CloseTails(v, ~uint64_t{0});
    });
  }
  for (CpuState& c : impl_->cpus) impl_->AttributePending(c);
}

tracefmt::RunTaken AccountingEngine::TakeRun(const tracefmt::RunOffer& offer) {
  return impl_->TakeRun(offer);
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
