#include "simulator/scheduler_model.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace simulator {
namespace {

using tracefmt::Runstate;
namespace ev = tracefmt::ev;

constexpr uint16_t kFirstReservedDomid = 0x7ff0;  // DOMID_FIRST_RESERVED: the rover wraps here

constexpr uint32_t kCredit2Schedule = ev::SchedClassEvent(ev::kSchedCredit2, 21);
constexpr uint32_t kCredit2CreditBurn = ev::SchedClassEvent(ev::kSchedCredit2, 3);
constexpr uint32_t kCredit2RunqCandidate = ev::SchedClassEvent(ev::kSchedCredit2, 20);
constexpr uint32_t kCredit2RunqPos = ev::SchedClassEvent(ev::kSchedCredit2, 2);
constexpr uint32_t kCredit2Tickle = ev::SchedClassEvent(ev::kSchedCredit2, 6);

// Hypercall numbers (xen/include/public/xen.h) and which arguments __trace_hypercall records.
struct HypercallShape {
  uint32_t op;
  uint8_t nargs;         // 32-bit arguments recorded
  uint8_t arg_index[2];  // which ones (TRC_PV_HYPERCALL_V2_ARG_32(i) bits)
};
constexpr HypercallShape kPlainHypercalls[] = {
    {1, 1, {1, 0}},   // mmu_update: count
    {13, 1, {1, 0}},  // multicall: count
    {24, 2, {0, 1}},  // vcpu_op: cmd, vcpuid
    {26, 1, {1, 0}},  // mmuext_op: count
    {29, 1, {0, 0}},  // sched_op: cmd
    {17, 0, {0, 0}},  // xen_version
    {12, 0, {0, 0}},  // memory_op
};
constexpr HypercallShape kGrantTableOp = {20, 2, {0, 2}};  // cmd, count
constexpr HypercallShape kEventChannelOp = {32, 0, {0, 0}};

constexpr uint32_t RunstateEvent(Runstate from, Runstate to) {
  return ev::kRunstateChange | ((static_cast<uint32_t>(from) & 3u) << 8) |
         ((static_cast<uint32_t>(to) & 3u) << 4);
}

}  // namespace

tracefmt::Status ValidateWorkload(const WorkloadConfig& config) {
  using tracefmt::ErrorCode;
  using tracefmt::MakeError;
  if (config.cpu_ids.empty()) return MakeError(ErrorCode::kInvalidArgument, "no CPUs");
  std::vector<uint32_t> ids = config.cpu_ids;
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end())
    return MakeError(ErrorCode::kInvalidArgument, "a CPU id is listed twice");
  if (config.domains == 0) return MakeError(ErrorCode::kInvalidArgument, "no Domain-0");
  if (config.vcpus_per_domain == 0 || config.vcpus_per_domain > 128)
    return MakeError(ErrorCode::kInvalidArgument, "vCPUs per domain must be 1-128");
  if (config.domains >= kFirstReservedDomid)
    return MakeError(ErrorCode::kInvalidArgument, "more domains than domain ids");
  if (config.cpu_khz == 0) return MakeError(ErrorCode::kInvalidArgument, "cpu_khz is zero");
  if (config.slice_ns == 0 || config.mean_run_ns == 0 || config.mean_block_ns == 0)
    return MakeError(ErrorCode::kInvalidArgument, "zero slice or burst length");
  if (config.first_new_domid >= kFirstReservedDomid)
    return MakeError(ErrorCode::kInvalidArgument, "first_new_domid is reserved");
  return {};
}

SchedulerModel::SchedulerModel(const WorkloadConfig& config, TraceProducer* producer)
    : config_(config), producer_(producer), rng_(config.seed) {
  std::sort(config_.cpu_ids.begin(), config_.cpu_ids.end());
  // The idle domain: one vCPU per physical CPU, vCPU id = CPU id, running from boot.
  idle_domain_index_ = static_cast<uint32_t>(domains_.size());
  domains_.push_back(Domain{ev::kIdleDomain, "idle", true, 0, 0, 0, 0, {}});
  for (uint32_t i = 0; i < config_.cpu_ids.size(); ++i) {
    const uint32_t id = config_.cpu_ids[i];
    Vcpu idle;
    idle.domain_index = idle_domain_index_;
    idle.id = static_cast<uint16_t>(id);
    idle.state = Runstate::kRunning;
    idle.cpu_index = i;
    idle.truth.vcpu = idle.id;
    const uint32_t vcpu_index = static_cast<uint32_t>(vcpus_.size());
    vcpus_.push_back(idle);
    domains_[idle_domain_index_].vcpus.push_back(vcpu_index);
    cpus_.push_back(Cpu{id, vcpu_index, vcpu_index, id * config_.tsc_skew_ticks});
    if (producer_ != nullptr) producer_->SetCurrent(id, ev::kIdleDomain, idle.id);
  }
  for (uint32_t d = 0; d < config_.domains; ++d) {
    const uint16_t id = static_cast<uint16_t>(d);
    CreateDomain(id, d == 0 ? "Domain-0" : "guest-" + std::to_string(id), /*emit=*/true);
  }
  domid_rover_ = config_.first_new_domid != 0 ? config_.first_new_domid
                                              : static_cast<uint16_t>(config_.domains);
  for (uint32_t i = 0; i < cpus_.size(); ++i) {
    if (config_.hypercall_hz > 0)
      Schedule(Exponential(1e9 / config_.hypercall_hz), EventKind::kHypercall, i);
    if (config_.io_hz > 0) Schedule(Exponential(1e9 / config_.io_hz), EventKind::kIo, i);
  }
  if (config_.burst_interval_ns > 0)
    Schedule(Exponential(static_cast<double>(config_.burst_interval_ns)), EventKind::kBurst, 0);
  if (config_.churn_hz > 0)
    Schedule(Exponential(1e9 / config_.churn_hz), EventKind::kCreateDomain, 0);
}

// --- time and records
// ------------------------------------------------------------------------------

void SchedulerModel::Schedule(uint64_t time, EventKind kind, uint32_t target, uint64_t generation) {
  events_.push(Event{std::max(time, now_), seq_++, kind, target, generation});
}

uint64_t SchedulerModel::TscAt(uint32_t cpu_index, uint64_t ns) const {
  const auto ticks = static_cast<unsigned __int128>(ns) * config_.cpu_khz / 1'000'000u;
  return cpus_[cpu_index].tsc_base + static_cast<uint64_t>(ticks);
}

// One tick counter for the whole host, each CPU's TSC offset from it by its skew: records are
// strictly increasing in TSC on each CPU and, without skew, across CPUs in the order they were
// made, so a consumer merging CPUs by TSC sees causes before effects (a wake before the dispatch).
uint64_t SchedulerModel::NextTsc(uint32_t cpu_index) {
  const auto ticks_now =
      static_cast<uint64_t>(static_cast<unsigned __int128>(now_) * config_.cpu_khz / 1'000'000u);
  last_ticks_ = std::max(ticks_now, last_ticks_ + kRecordTicks);
  return cpus_[cpu_index].tsc_base + last_ticks_;
}

void SchedulerModel::Emit(uint32_t cpu_index, uint32_t event,
                          std::initializer_list<uint32_t> words) {
  ++records_emitted_;
  const uint64_t tsc = NextTsc(cpu_index);
  if (producer_ != nullptr) producer_->Trace(cpus_[cpu_index].id, event, tsc, words);
}

double SchedulerModel::Uniform() {
  return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
}

uint64_t SchedulerModel::Exponential(double mean) {
  return now_ + static_cast<uint64_t>(-std::log1p(-Uniform()) * mean) + 1;
}

uint16_t SchedulerModel::DomainIdOf(uint32_t vcpu_index) const {
  return domains_[vcpus_[vcpu_index].domain_index].id;
}

uint32_t SchedulerModel::DomainUnitWord(uint32_t vcpu_index) const {
  return uint32_t{vcpus_[vcpu_index].id} | (uint32_t{DomainIdOf(vcpu_index)} << 16);
}

bool SchedulerModel::IsIdle(uint32_t vcpu_index) const {
  return vcpus_[vcpu_index].domain_index == idle_domain_index_;
}

// --- the event loop ------------------------------------------------------------------------------

void SchedulerModel::AdvanceTo(uint64_t ns) {
  while (!events_.empty() && events_.top().time <= ns) {
    const Event e = events_.top();
    events_.pop();
    now_ = e.time;
    Dispatch(e);
  }
  now_ = std::max(now_, ns);
}

void SchedulerModel::Dispatch(const Event& e) {
  switch (e.kind) {
    case EventKind::kSliceEnd:
      OnSliceEnd(e.target, e.generation);
      break;
    case EventKind::kBlock:
      OnBlock(e.target, e.generation);
      break;
    case EventKind::kWake:
      OnWake(e.target, e.generation);
      break;
    case EventKind::kHypercall:
      OnHypercall(e.target, /*io=*/false);
      Schedule(Exponential(1e9 / config_.hypercall_hz), EventKind::kHypercall, e.target);
      break;
    case EventKind::kIo:
      OnHypercall(e.target, /*io=*/true);
      Schedule(Exponential(1e9 / config_.io_hz), EventKind::kIo, e.target);
      break;
    case EventKind::kBurst:
      OnBurst();
      Schedule(Exponential(static_cast<double>(config_.burst_interval_ns)), EventKind::kBurst, 0);
      break;
    case EventKind::kCreateDomain:
      OnCreateDomain();
      Schedule(Exponential(1e9 / config_.churn_hz), EventKind::kCreateDomain, 0);
      break;
    case EventKind::kDestroyDomain:
      OnDestroyDomain(e.target);
      break;
  }
}

// --- the scheduler
// -----------------------------------------------------------------------------------

void SchedulerModel::ChangeRunstate(uint32_t cpu_index, uint32_t vcpu_index, Runstate to) {
  Vcpu& v = vcpus_[vcpu_index];
  v.truth.state_ns[RunstateIndex(v.state)] += now_ - v.state_entry_ns;
  Emit(cpu_index, RunstateEvent(v.state, to), {DomainUnitWord(vcpu_index)});
  v.state = to;
  v.state_entry_ns = now_;
}

// Who runs next on this CPU; puts a preempted prev back at the tail of the run queue.
uint32_t SchedulerModel::PickNext(uint32_t cpu_index, Runstate prev_becomes) {
  const uint32_t prev = cpus_[cpu_index].current;
  if (runqueue_.empty()) {
    return prev_becomes == Runstate::kRunnable ? prev : cpus_[cpu_index].idle_vcpu;
  }
  if (prev_becomes == Runstate::kRunnable && !IsIdle(prev)) runqueue_.push_back(prev);
  const uint32_t next = runqueue_.front();
  runqueue_.pop_front();
  return next;
}

void SchedulerModel::ContextSwitch(uint32_t cpu_index, Runstate prev_becomes) {
  Cpu& cpu = cpus_[cpu_index];
  const uint32_t prev = cpu.current;
  const uint32_t next = PickNext(cpu_index, prev_becomes);
  const uint64_t ran_ns = now_ - vcpus_[prev].state_entry_ns;
  if (config_.credit2_records) {
    Emit(cpu_index, kCredit2Schedule, {cpu.id, IsIdle(prev) ? 1u << 8 : 0u});
    if (!IsIdle(prev)) {
      const auto credit = static_cast<uint32_t>(static_cast<int64_t>(config_.slice_ns) -
                                                static_cast<int64_t>(ran_ns));
      Emit(cpu_index, kCredit2CreditBurn,
           {DomainUnitWord(prev), credit, 0x80000000u, static_cast<uint32_t>(ran_ns)});
    }
  }
  const uint32_t next_time =
      IsIdle(next) ? ev::kNoTimeLimit : static_cast<uint32_t>(config_.slice_ns);
  if (next == prev) {
    Emit(cpu_index, ev::kSwitchInfCont,
         {DomainIdOf(prev), vcpus_[prev].id, static_cast<uint32_t>(ran_ns), next_time});
    Emit(cpu_index, ev::kContinueRunning, {DomainUnitWord(prev)});
    cpu.slice_generation++;
    if (!IsIdle(prev))
      Schedule(now_ + config_.slice_ns, EventKind::kSliceEnd, cpu_index, cpu.slice_generation);
    return;
  }
  Vcpu& n = vcpus_[next];
  if (config_.credit2_records && !IsIdle(next))
    Emit(cpu_index, kCredit2RunqCandidate,
         {DomainUnitWord(next), 0xffffffffu, static_cast<uint32_t>(config_.slice_ns)});
  const uint64_t waited = n.state == Runstate::kRunnable ? now_ - n.state_entry_ns : 0;
  Emit(cpu_index, ev::kSwitchInfPrev,
       {DomainIdOf(prev), vcpus_[prev].id, static_cast<uint32_t>(ran_ns)});
  Emit(cpu_index, ev::kSwitchInfNext,
       {DomainIdOf(next), n.id, static_cast<uint32_t>(waited), next_time});
  Emit(cpu_index, ev::kSwitch, {DomainIdOf(prev), vcpus_[prev].id, DomainIdOf(next), n.id});
  Vcpu& p = vcpus_[prev];
  if (!IsIdle(prev)) {
    if (prev_becomes == Runstate::kRunnable) {
      p.run_left_ns -= std::min(p.run_left_ns, now_ - p.dispatched_ns);
      ++p.truth.preemptions;
    }
    ++p.generation;  // its pending block event is void
  }
  ChangeRunstate(cpu_index, prev, prev_becomes);
  StartRunning(cpu_index, next);
}

void SchedulerModel::StartRunning(uint32_t cpu_index, uint32_t vcpu_index) {
  Cpu& cpu = cpus_[cpu_index];
  Vcpu& v = vcpus_[vcpu_index];
  ChangeRunstate(cpu_index, vcpu_index, Runstate::kRunning);
  ++v.truth.dispatches;
  v.cpu_index = cpu_index;
  v.dispatched_ns = now_;
  cpu.current = vcpu_index;
  // The context switch proper: from here on, records on this CPU are made in `next`'s context.
  if (producer_ != nullptr) producer_->SetCurrent(cpu.id, DomainIdOf(vcpu_index), v.id);
  ++cpu.slice_generation;
  if (IsIdle(vcpu_index)) return;
  Schedule(now_ + config_.slice_ns, EventKind::kSliceEnd, cpu_index, cpu.slice_generation);
  if (!v.busy)
    Schedule(now_ + std::max<uint64_t>(v.run_left_ns, 1), EventKind::kBlock, vcpu_index,
             v.generation);
}

void SchedulerModel::OnSliceEnd(uint32_t cpu_index, uint64_t generation) {
  if (generation != cpus_[cpu_index].slice_generation || IsIdle(cpus_[cpu_index].current)) return;
  ContextSwitch(cpu_index, Runstate::kRunnable);
}

void SchedulerModel::OnBlock(uint32_t vcpu_index, uint64_t generation) {
  Vcpu& v = vcpus_[vcpu_index];
  if (generation != v.generation || v.state != Runstate::kRunning) return;
  const uint32_t cpu_index = v.cpu_index;
  Emit(cpu_index, ev::kBlock, {DomainIdOf(vcpu_index), v.id});
  ++v.truth.blocks;
  ContextSwitch(cpu_index, Runstate::kBlocked);
  Schedule(Exponential(static_cast<double>(config_.mean_block_ns)), EventKind::kWake, vcpu_index,
           vcpus_[vcpu_index].generation);
}

void SchedulerModel::OnWake(uint32_t vcpu_index, uint64_t generation) {
  Vcpu& v = vcpus_[vcpu_index];
  if (generation != v.generation || v.state != Runstate::kBlocked) return;
  ++v.truth.wakes;
  MakeRunnable(vcpu_index, v.cpu_index);
}

// vcpu_wake: from blocked or offline to runnable, queued, an idle CPU tickled.
void SchedulerModel::MakeRunnable(uint32_t vcpu_index, uint32_t cpu_index) {
  Vcpu& v = vcpus_[vcpu_index];
  Emit(cpu_index, ev::kWake, {DomainIdOf(vcpu_index), v.id});
  ChangeRunstate(cpu_index, vcpu_index, Runstate::kRunnable);
  if (!v.busy) v.run_left_ns = Exponential(static_cast<double>(config_.mean_run_ns)) - now_;
  runqueue_.push_back(vcpu_index);
  if (config_.credit2_records)
    Emit(cpu_index, kCredit2RunqPos,
         {DomainUnitWord(vcpu_index), static_cast<uint32_t>(runqueue_.size() - 1)});
  TickleIdleCpu(cpu_index);
}

void SchedulerModel::TickleIdleCpu(uint32_t preferred_cpu_index) {
  uint32_t chosen = UINT32_MAX;
  if (IsIdle(cpus_[preferred_cpu_index].current)) {
    chosen = preferred_cpu_index;
  } else {
    for (uint32_t i = 0; i < cpus_.size() && chosen == UINT32_MAX; ++i)
      if (IsIdle(cpus_[i].current)) chosen = i;
  }
  if (chosen == UINT32_MAX || runqueue_.empty()) return;
  if (config_.credit2_records) Emit(preferred_cpu_index, kCredit2Tickle, {cpus_[chosen].id});
  ContextSwitch(chosen, Runstate::kRunnable);
}

// --- guest activity
// ------------------------------------------------------------------------------------

void SchedulerModel::OnHypercall(uint32_t cpu_index, bool io) {
  const uint32_t current = cpus_[cpu_index].current;
  if (IsIdle(current)) return;
  const HypercallShape& shape = io ? (rng_() & 1 ? kGrantTableOp : kEventChannelOp)
                                   : kPlainHypercalls[rng_() % std::size(kPlainHypercalls)];
  uint32_t op_word = shape.op;
  for (uint8_t i = 0; i < shape.nargs; ++i) op_word |= 1u << (20 + 2 * shape.arg_index[i]);
  const auto arg = static_cast<uint32_t>(rng_() % 16);
  if (shape.nargs == 0) {
    Emit(cpu_index, ev::kPvHypercallV2, {op_word});
  } else if (shape.nargs == 1) {
    Emit(cpu_index, ev::kPvHypercallV2, {op_word, arg});
  } else {
    Emit(cpu_index, ev::kPvHypercallV2, {op_word, arg, arg + 1});
  }
  Domain& d = domains_[vcpus_[current].domain_index];
  ++d.hypercalls;
  if (io) ++d.io_events;
}

void SchedulerModel::OnBurst() {
  const auto start = static_cast<uint32_t>(rng_() % cpus_.size());
  for (uint32_t k = 0; k < cpus_.size(); ++k) {
    const uint32_t cpu_index = (start + k) % static_cast<uint32_t>(cpus_.size());
    if (IsIdle(cpus_[cpu_index].current)) continue;
    for (uint32_t n = 0; n < config_.burst_records; ++n) OnHypercall(cpu_index, /*io=*/false);
    return;
  }
}

uint32_t SchedulerModel::CreateDomain(uint16_t id, std::string name, bool emit) {
  const auto domain_index = static_cast<uint32_t>(domains_.size());
  domains_.push_back(Domain{id, std::move(name), true, now_, 0, 0, 0, {}});
  live_by_id_[id] = domain_index;
  if (id != 0) ++live_guests_;
  const uint32_t toolstack_cpu = domain_index == 1 ? 0 : vcpus_[domains_[1].vcpus[0]].cpu_index;
  if (emit) Emit(toolstack_cpu, ev::kDomAdd, {id});
  for (uint32_t i = 0; i < config_.vcpus_per_domain; ++i) {
    Vcpu v;
    v.domain_index = domain_index;
    v.id = static_cast<uint16_t>(i);
    v.state_entry_ns = now_;
    v.cpu_index = (domain_index + i) % static_cast<uint32_t>(cpus_.size());
    v.busy = id != 0 && Uniform() < config_.busy_fraction;
    v.truth.vcpu = v.id;
    domains_[domain_index].vcpus.push_back(static_cast<uint32_t>(vcpus_.size()));
    vcpus_.push_back(v);
  }
  // Unpause: every vCPU goes from offline to runnable.
  for (uint32_t vcpu_index : domains_[domain_index].vcpus) MakeRunnable(vcpu_index, toolstack_cpu);
  return domain_index;
}

uint16_t SchedulerModel::AllocateDomid() {
  for (uint32_t tries = 0; tries < kFirstReservedDomid; ++tries) {
    const uint16_t candidate = domid_rover_;
    domid_rover_ = domid_rover_ + 1 >= kFirstReservedDomid ? 1 : domid_rover_ + 1;
    if (candidate != 0 && !live_by_id_.contains(candidate)) return candidate;
  }
  return 0;
}

void SchedulerModel::OnCreateDomain() {
  if (live_guests_ >= config_.max_domains) return;
  const uint16_t id = AllocateDomid();
  if (id == 0) return;
  const uint32_t index = CreateDomain(id, "guest-" + std::to_string(id), /*emit=*/true);
  Schedule(Exponential(static_cast<double>(config_.mean_lifetime_ns)), EventKind::kDestroyDomain,
           index);
}

// domain_kill: every vCPU is put to sleep (running ones switched out, runnable ones taken off the
// queue: both go offline; blocked ones stay blocked), then the scheduler forgets the domain.
void SchedulerModel::OnDestroyDomain(uint32_t domain_index) {
  Domain& d = domains_[domain_index];
  if (!d.alive) return;
  const uint32_t toolstack_cpu = vcpus_[domains_[1].vcpus[0]].cpu_index;
  for (uint32_t vcpu_index : d.vcpus) {
    Vcpu& v = vcpus_[vcpu_index];
    ++v.generation;
    Emit(v.cpu_index, ev::kSleep, {d.id, v.id});
    if (v.state == Runstate::kRunning) {
      ContextSwitch(v.cpu_index, Runstate::kOffline);
    } else if (v.state == Runstate::kRunnable) {
      runqueue_.erase(std::find(runqueue_.begin(), runqueue_.end(), vcpu_index));
      ChangeRunstate(v.cpu_index, vcpu_index, Runstate::kOffline);
    }
    v.truth.state_ns[RunstateIndex(v.state)] += now_ - v.state_entry_ns;
    v.state_entry_ns = now_;
  }
  Emit(toolstack_cpu, ev::kDomRem, {d.id});
  d.alive = false;
  d.destroyed_ns = now_;
  live_by_id_.erase(d.id);
  --live_guests_;
}

// --- truth
// ---------------------------------------------------------------------------------------------

Truth SchedulerModel::TruthNow() const {
  Truth t;
  t.now_ns = now_;
  t.cpu_khz = config_.cpu_khz;
  t.seed = config_.seed;
  t.records_emitted = records_emitted_;
  for (const Domain& d : domains_) {
    DomainTruth dt;
    dt.id = d.id;
    dt.name = d.name;
    dt.created_ns = d.created_ns;
    dt.destroyed_ns = d.destroyed_ns;
    dt.alive = d.alive;
    dt.hypercalls = d.hypercalls;
    dt.io_events = d.io_events;
    for (uint32_t vcpu_index : d.vcpus) {
      const Vcpu& v = vcpus_[vcpu_index];
      VcpuTruth vt = v.truth;
      vt.state = v.state;
      if (d.alive) vt.state_ns[RunstateIndex(v.state)] += now_ - v.state_entry_ns;
      dt.vcpus.push_back(vt);
    }
    t.domains.push_back(std::move(dt));
  }
  for (const Cpu& c : cpus_) t.cpus.push_back(CpuTruthFrom(c.id, producer_));
  return t;
}

// The tick counter as records see it: it may run ahead of simulated time (kRecordTicks).
uint64_t SchedulerModel::TscNow() const {
  uint64_t tsc = 0;
  for (size_t i = 0; i < cpus_.size(); ++i)
    tsc = std::max(
        tsc, std::max(TscAt(static_cast<uint32_t>(i), now_), cpus_[i].tsc_base + last_ticks_));
  return tsc;
}

bool SchedulerModel::VcpuCpuTime(uint16_t domid, uint32_t vcpu, uint64_t& ns) const {
  auto it = live_by_id_.find(domid);
  if (it == live_by_id_.end() || vcpu >= domains_[it->second].vcpus.size()) return false;
  const Vcpu& v = vcpus_[domains_[it->second].vcpus[vcpu]];
  ns = v.truth.state_ns[0] + (v.state == Runstate::kRunning ? now_ - v.state_entry_ns : 0);
  return true;
}

std::vector<DomainInfo> SchedulerModel::LiveDomains() const {
  std::vector<DomainInfo> out;
  for (const auto& [id, index] : live_by_id_) {
    const Domain& d = domains_[index];
    DomainInfo info;
    info.id = id;
    info.name = d.name;
    info.vcpus = static_cast<uint32_t>(d.vcpus.size());
    info.instance = d.created_ns + 1;
    bool all_blocked = true;
    for (uint32_t vcpu_index : d.vcpus) {
      const Vcpu& v = vcpus_[vcpu_index];
      uint64_t vcpu_ns = v.truth.state_ns[0];
      if (v.state == Runstate::kRunning) {
        vcpu_ns += now_ - v.state_entry_ns;
        ++info.running_vcpus;
      }
      info.cpu_time_ns += vcpu_ns;
      info.vcpu_cpu_time_ns.push_back(vcpu_ns);
      all_blocked = all_blocked && v.state == Runstate::kBlocked;
    }
    info.blocked = all_blocked;
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const DomainInfo& a, const DomainInfo& b) { return a.id < b.id; });
  return out;
}

}  // namespace simulator
