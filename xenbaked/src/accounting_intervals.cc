// The accounting engine's runstate intervals: each record that changes a vCPU's state closes
// the interval it was in and opens the next, crediting each part to the bucket the trace
// vouches for (a runstate, or unknown: loss gaps, contradictions, before the first record);
// lost-records reports; domains and their vCPUs, incarnations of reused ids.
#include <algorithm>
#include <array>
#include <cstdint>

#include "accounting_engine.h"

namespace xenbaked {

using namespace engine_detail;  // NOLINT: this engine's own state

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

  if (v->link_pending) [[unlikely]] {
    // The change the held-back record missed: stamped before it and delivered after it (records
    // of two CPUs out of order), or stamped a little later on another CPU (a wake on the waker's
    // CPU after the dispatch it caused on this one, by TSC skew): in order, nothing was
    // contradicted, and the vCPU is already where the later record put it. But when the
    // held-back record put the vCPU back in link_from, a later-stamped link_from -> link_to is
    // just as well its next change; read as the missed one, a real change would be lost and
    // the time after it credited to the wrong state, so it is read as the next change (the
    // held-back interval then costs what a contradiction costs).
    const bool could_be_next = v->state == v->link_from && tsc > v->link_at;
    if (tsc <= v->link_at + reorder_ticks && old_state == v->link_from && new_state == v->link_to &&
        !could_be_next) {
      SettleLink(*d, *v, /*reordered=*/true, tsc, cpu);
      return;
    }
    SettleLink(*d, *v, /*reordered=*/false);
  }
  if (v->known && v->state == old_state && !v->doubtful() && tsc >= v->since_tsc) [[likely]] {
    const uint64_t at = CloseInterval(*d, *v, cpu, tsc, static_cast<int>(old_state),
                                      /*completes_slice=*/true);
    Open(*v, at, /*known=*/true, new_state);
  } else {
    if (tsc < v->since_tsc) {
      // Older than the interval it would close: it comes after a record stamped later (records
      // of two CPUs out of order, by skew or in delivery). That later record already said where
      // the vCPU is now, so this one changes nothing from there on; what it tells is that the
      // vCPU was not in one state throughout the interval that record closed, so the part of
      // it from here on goes to unknown (it is still held as a tail: the CPU that wrote this
      // record had not recorded past it). No time is counted twice.
      ++anomalies.time_backwards;
      RetractTails(*v, tsc, v->since_tsc);
      if (new_state == Runstate::kRunning) ++v->dispatches;
      return;
    }
    if (v->known && v->state != old_state) {
      if (v->state == Runstate::kRunning && cpus[v->cpu].current_domid == domid &&
          cpus[v->cpu].current_vcpu == vcpu_id)
        cpus[v->cpu].ClearCurrent();
      if (!v->doubtful()) {
        // The chain broke with no loss to explain it: held back for the reorder tolerance, in
        // case the record of the missing change comes stamped a little later from another CPU;
        // the record's new state holds from here either way.
        v->link_pending = true;
        v->link_from = v->state;
        v->link_to = old_state;
        v->link_cpu = v->cpu;
        v->link_since = v->since_tsc;
        v->link_at = tsc;
        v->link_published = std::max(v->published_tsc, v->since_tsc);
        Open(*v, std::max(tsc, v->published_tsc), /*known=*/true, new_state);
        v->dispatch_seen = false;
        if (new_state == Runstate::kRunning) Dispatched(c, *v, cpu, tsc, domid, vcpu_id);
        return;
      }
      ++anomalies.runstate_mismatch;  // explained by the loss: see CloseInterval
    }
    const uint64_t at = CloseInterval(*d, *v, cpu, tsc, static_cast<int>(old_state),
                                      /*completes_slice=*/true);
    Open(*v, at, /*known=*/true, new_state);
  }
  v->dispatch_seen = new_state == Runstate::kRunning;
  if (new_state == Runstate::kRunning) Dispatched(c, *v, cpu, tsc, domid, vcpu_id);
}

void AccountingEngine::Impl::Dispatched(CpuState& c, VcpuState& v, uint32_t cpu, uint64_t tsc,
                                        uint32_t domid, uint32_t vcpu_id) {
  // A CPU runs one vCPU at a time: one still held running here was switched out by now, and
  // its record of that is missing (lost): it ran until here, and where it went is unknown.
  if (c.current_slot != kNoSlot) {
    DomainState& prev_domain = slots[c.current_slot];
    VcpuState* prev = nullptr;
    if (c.current_vcpu < prev_domain.vcpus.size()) {
      prev = &prev_domain.vcpus[c.current_vcpu];
    } else {
      auto it = prev_domain.sparse_vcpus.find(c.current_vcpu);
      if (it != prev_domain.sparse_vcpus.end()) prev = &it->second;
    }
    if (prev != nullptr && prev != &v && prev->known && prev->state == Runstate::kRunning &&
        prev->cpu == cpu && !prev_domain.destroyed) {
      const uint64_t at = CloseInterval(prev_domain, *prev, cpu, tsc, kNotTold, false);
      Open(*prev, at, /*known=*/false, Runstate::kRunning);
    }
  }
  ++v.dispatches;
  v.cpu = cpu;
  if (c.announced_domid != kNoDomain && c.announced_domid != domid) ++anomalies.switch_mismatch;
  c.announced_domid = kNoDomain;
  c.SetCurrent(domid, vcpu_id, slot_of_domid[domid]);
  if (!c.dispatched) {
    c.dispatched = true;
    c.first_dispatch_tsc = tsc;
  }
}

void AccountingEngine::Impl::SettleLink(DomainState& d, VcpuState& v, bool reordered,
                                        uint64_t missed_tsc, uint32_t missed_cpu) {
  v.link_pending = false;
  const size_t from = static_cast<size_t>(v.link_from);
  if (reordered) {
    // The missed change happened at its own TSC: the vCPU was in link_from up to it and in
    // link_to from it to the record that came first (which said so). A loss reported while the
    // link was held settled it already (OnLostRecords), so a report still to come can only
    // cover its end: the part no CPU vouched for yet is held as a tail.
    const uint64_t changed =
        std::clamp(missed_tsc, std::max(v.link_since, v.link_published), v.link_at);
    Credit(d, v, from, v.link_since, changed, v.link_cpu, false, v.link_published);
    Credit(d, v, static_cast<size_t>(v.link_to), changed, v.link_at, missed_cpu, false, changed);
    return;
  }
  // A true contradiction costs at most its interval: what was published stays, the rest is
  // unknown.
  ++anomalies.runstate_mismatch;
  Credit(d, v, from, v.link_since, v.link_published, v.link_cpu, false, v.link_published);
  Credit(d, v, kUnknown, std::max(v.link_since, v.link_published), v.link_at, v.link_cpu, false, 0);
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
    //  - The intervals of vCPUs not running that records on other CPUs closed after the first
    //    lost TSC (they came before this report in TSC order) are in the same doubt: the part
    //    the gap covers of the tail pieces held for that (HoldTail) goes to unknown. A held-back
    //    contradiction the gap covers is settled as one now (its missing change may hide in the
    //    gap, and once credited as reordered, nothing could take it back).
    for (DomainState& d : slots) {
      if (!d.in_use || d.destroyed) continue;
      d.ForEachVcpu([&](VcpuState& v) {
        if (v.link_pending && v.link_from != Runstate::kRunning && gap_start < v.link_at &&
            tsc > std::max(v.link_since, v.link_published))
          SettleLink(d, v, /*reordered=*/false);
        if (v.tail_count != 0 || !v.overflow.empty()) RetractTails(v, gap_start, tsc);
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
                                           bool completes_slice, uint64_t vouched) {
  if (to <= from) return;
  if (bucket != static_cast<size_t>(Runstate::kRunning) && bucket != kUnknown) {
    HoldTail(v, bucket, from, to, vouched, /*backward=*/false);
    return;
  }
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

// Credits the overflow's times to their states and empties it.
namespace {
void CreditOverflow(VcpuState& v) {
  for (size_t s = 0; s < 3; ++s) v.ticks[s + 1] += v.overflow.ticks[s];
  v.overflow = TailOverflow{};
}
}  // namespace

uint64_t AccountingEngine::Impl::VouchedUntil(const TailPiece& p, uint64_t heard) {
  if (p.backward) return heard >= p.to ? p.to : p.published;
  return std::clamp(std::max(heard, p.published), p.from, p.to);
}

// The part every CPU has recorded past (by heard_floor, which lags: it is refreshed only here when
// a vCPU's tail is full) or a snapshot published is credited at once; the rest waits as a piece.
// Pieces are settled a few at a time when the tail fills, so the CPUs are walked at most once per
// few changes of a vCPU, never per record.
inline void AccountingEngine::Impl::HoldTail(VcpuState& v, size_t bucket, uint64_t from,
                                             uint64_t to, uint64_t vouched, bool backward) {
  const uint64_t heard = std::max(vouched, heard_floor);
  const uint64_t sure = backward ? (heard >= to ? to : from) : std::clamp(heard, from, to);
  v.ticks[bucket] += sure - from;
  if (sure == to) return;
  if (v.tail_count == kTailPieces) MakeTailRoom(v);
  v.Tail(v.tail_count++) = TailPiece{.from = sure,
                                     .to = to,
                                     .published = sure,
                                     .bucket = static_cast<uint32_t>(bucket),
                                     .backward = backward};
}

void AccountingEngine::Impl::MakeTailRoom(VcpuState& v) {
  // The floor is brought up to date only when it cannot settle even the oldest piece: one walk
  // of the CPUs and one of the tail per few changes of the vCPU.
  if (v.Tail(0).to > heard_floor) RefreshHeardFloor(now_tsc);
  SettleTails(v, heard_floor);
  if (v.tail_count < kTailPieces) return;
  // Some CPU has stayed silent over this vCPU's last few changes: its oldest piece is folded
  // into the overflow (what a snapshot published of it is final, so credited).
  TailPiece& oldest = v.Tail(0);
  v.ticks[oldest.bucket] += oldest.published - oldest.from;
  TailOverflow& o = v.overflow;
  if (o.published) CreditOverflow(v);  // final: what is folded in next must not join it
  if (oldest.to > oldest.published) {
    o.from = o.empty() ? oldest.published : std::min(o.from, oldest.published);
    o.to = std::max(o.to, oldest.to);
    o.ticks[oldest.bucket - 1] += oldest.to - oldest.published;
  }
  v.tail_head = (v.tail_head + 1) % kTailPieces;
  --v.tail_count;
}

void AccountingEngine::Impl::SettleTails(VcpuState& v, uint64_t heard) {
  if (!v.overflow.empty() && v.overflow.to <= heard) CreditOverflow(v);
  // Oldest first, and only while they are vouched: a piece out of time order (a held-back
  // contradiction settled late) waits for the one before it, which costs nothing but the wait.
  while (v.tail_count != 0 && v.Tail(0).to <= heard) {
    const TailPiece& p = v.Tail(0);
    v.ticks[p.bucket] += p.to - p.from;
    v.tail_head = (v.tail_head + 1) % kTailPieces;
    --v.tail_count;
  }
}

void AccountingEngine::Impl::CloseTails(VcpuState& v, uint64_t heard) {
  if (!v.overflow.empty()) {
    // Of the span past `heard`, each state may hold at most its length: that much is unknown.
    TailOverflow& o = v.overflow;
    const uint64_t unvouched = o.published ? 0 : o.to - std::clamp(heard, o.from, o.to);
    for (uint64_t& t : o.ticks) {
      const uint64_t taken = std::min(t, unvouched);
      t -= taken;
      v.ticks[kUnknown] += taken;
    }
    CreditOverflow(v);
  }
  for (uint8_t i = 0; i < v.tail_count; ++i) {
    const TailPiece& p = v.Tail(i);
    const uint64_t until = VouchedUntil(p, heard);
    v.ticks[p.bucket] += until - p.from;
    v.ticks[kUnknown] += p.to - until;
  }
  v.tail_count = 0;
  v.tail_head = 0;
}

void AccountingEngine::Impl::RetractTails(VcpuState& v, uint64_t gap_from, uint64_t gap_to) {
  TailOverflow& o = v.overflow;
  if (!o.empty() && !o.published && gap_from < o.to && gap_to > o.from) {
    const uint64_t covered = std::min(o.to, gap_to) - o.from;
    for (uint64_t& t : o.ticks) {
      const uint64_t taken = std::min(t, covered);
      t -= taken;
      v.ticks[kUnknown] += taken;
    }
  }
  std::array<TailPiece, kTailPieces> kept_pieces;
  uint8_t kept = 0;
  for (uint8_t i = 0; i < v.tail_count; ++i) {
    TailPiece p = v.Tail(i);
    if (p.backward) {
      // Read back from its end: a change hidden in the gap leaves everything before the gap's
      // end unknown; from there on the record's word still holds. (Never published in part.)
      if (gap_from < p.to && gap_to > p.from) {
        const uint64_t until = std::min(p.to, gap_to);
        v.ticks[kUnknown] += until - p.from;
        p.from = p.published = until;
      }
    } else {
      // Up to the gap's start the lossy CPU's records all came (the gap began after its last
      // one), and what a snapshot published stays. The part after the report (a piece closed
      // a little past it, within the reorder tolerance) goes with the gap: it is rare and
      // tiny, and keeping it would split the piece.
      const uint64_t cut = std::max({p.from, p.published, gap_from});
      if (cut < std::min(p.to, gap_to)) {
        v.ticks[kUnknown] += p.to - cut;
        p.to = cut;
      }
    }
    if (p.to > p.from) kept_pieces[kept++] = p;
  }
  v.tail = kept_pieces;
  v.tail_head = 0;
  v.tail_count = kept;
}

uint64_t AccountingEngine::Impl::RefreshHeardFloor(uint64_t cap) {
  uint64_t min_heard = cap;
  for (const CpuState& c : cpus)
    if (c.seen) min_heard = std::min(min_heard, c.HeardUntil());
  heard_floor = std::max(heard_floor, min_heard);
  return min_heard;
}

uint64_t AccountingEngine::Impl::CloseInterval(DomainState& d, VcpuState& v, uint32_t cpu,
                                               uint64_t tsc, int told, bool completes_slice) {
  // What a snapshot published stays published: the interval ends no earlier than that.
  const uint64_t since = v.since_tsc;
  const uint64_t at = std::max({tsc, since, v.published_tsc});
  const size_t state = static_cast<size_t>(v.state);
  const uint64_t vouched = v.published_tsc;
  if (!v.known) {
    Credit(d, v, kUnknown, since, at, cpu, false, vouched);
  } else if (v.doubtful()) {
    // A loss gap covered doubt_from..doubt_to: before it the vCPU was in `state`; in it a change
    // may hide; after it every change was recorded, so the record's old state held from the
    // gap's end to the record (nothing tells it when the domain ends or another gap does).
    const uint64_t gap_from = std::clamp(v.doubt_from, since, at);
    const uint64_t gap_to = std::clamp(v.doubt_to, gap_from, at);
    Credit(d, v, state, since, gap_from, v.cpu, false, vouched);
    Credit(d, v, kUnknown, gap_from, gap_to, cpu, false, vouched);
    const size_t after = told == kNotTold ? kUnknown : static_cast<size_t>(told);
    if (after == kUnknown || after == static_cast<size_t>(Runstate::kRunning))
      Credit(d, v, after, gap_to, at, cpu, false, vouched);
    else if (at > gap_to)
      HoldTail(v, after, gap_to, at, vouched, /*backward=*/true);
  } else if (v.state == Runstate::kRunning && cpu != v.cpu) {
    // A record from another CPU ends a vCPU running on CPU c: its switch-out is written on c
    // (schedule() there), and c has delivered nothing since its last record, which the merge
    // would have put before this one. So c's records are missing from there on (a loss not
    // reported yet): running is vouched for up to c's last record, the rest is unknown.
    const uint64_t vouched_run =
        std::clamp(cpus[v.cpu].HeardUntil(), std::min(v.published_tsc, at), at);
    Credit(d, v, state, since, vouched_run, v.cpu, false, vouched);
    Credit(d, v, kUnknown, vouched_run, at, cpu, false, vouched);
  } else if (told == kNotTold || static_cast<size_t>(told) == state) {
    Credit(d, v, state, since, at, v.cpu, completes_slice, vouched);
  } else {
    // A contradiction no reported loss explains: the change it implies happened somewhere in
    // the interval, so all of it is unknown but what a snapshot already published (a total
    // never goes down; the snapshot published only what no report then pending could undo).
    const uint64_t published = std::clamp(v.published_tsc, since, at);
    Credit(d, v, state, since, published, v.cpu, false, vouched);
    Credit(d, v, kUnknown, published, at, cpu, false, vouched);
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
  // The same holds for its tail pieces (HoldTail): no report can take them back once the domain
  // has ended, so what the CPUs do not vouch for yet is unknown.
  const uint64_t min_heard = RefreshHeardFloor(tsc);
  d.ForEachVcpu([&](VcpuState& v) {
    if (!v.seen) return;
    if (v.link_pending) SettleLink(d, v, /*reordered=*/false);
    uint64_t vouched = tsc;
    if (!input_ended && v.known)
      vouched = v.state == Runstate::kRunning ? cpus[v.cpu].HeardUntil() : min_heard;
    const uint64_t at = CloseInterval(d, v, v.cpu, std::min(tsc, vouched), kNotTold,
                                      /*completes_slice=*/true);
    Open(v, at, /*known=*/false, v.state);
    Open(v, CloseInterval(d, v, v.cpu, tsc, kNotTold, false), /*known=*/false, v.state);
    CloseTails(v, input_ended ? ~uint64_t{0} : min_heard);
  });
  for (CpuState& c : cpus) {
    if (c.current_domid == d.domid) c.ClearCurrent();
    if (c.announced_domid == d.domid) c.announced_domid = kNoDomain;
  }
  d.destroyed = true;
  d.last_seen_tsc = std::max(d.last_seen_tsc, tsc);
  if (on_final) on_final(Totals(d, tsc, tsc, nullptr));
}

}  // namespace xenbaked
