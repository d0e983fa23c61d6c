#include "simulator/simulated_host.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "simulator/replay.h"
#include "tracefmt/events.h"
#include "tracefmt/ring.h"

namespace simulator {

using tracefmt::ErrorCode;
using tracefmt::MakeError;

void SimulatedHost::FanOut::OnHighWater(uint32_t cpu) {
  if (first != nullptr) first->OnHighWater(cpu);
  if (second != nullptr) second->OnHighWater(cpu);
}

tracefmt::Result<std::unique_ptr<SimulatedHost>> SimulatedHost::Create(HostConfig config) {
  std::unique_ptr<SimulatedHost> host(new SimulatedHost(std::move(config)));
  if (auto st = host->Init(); !st) return st.error();
  return host;
}

tracefmt::Status SimulatedHost::Init() {
  std::unique_ptr<CaptureReplayer> replay;
  if (!config_.replay_path.empty()) {
    auto loaded =
        CaptureReplayer::Load(config_.replay_path, config_.workload.cpu_khz, config_.replay_speed);
    if (!loaded) return loaded.error();
    replay = std::move(*loaded);
    config_.workload.cpu_ids = replay->cpu_ids();
  }
  if (auto st = ValidateWorkload(config_.workload); !st) return st;
  std::sort(config_.workload.cpu_ids.begin(), config_.workload.cpu_ids.end());
  uint32_t max_cpu_id = config_.workload.cpu_ids.back();
  for (uint32_t id : config_.offline_cpu_ids) {
    if (std::find(config_.workload.cpu_ids.begin(), config_.workload.cpu_ids.end(), id) !=
        config_.workload.cpu_ids.end())
      return MakeError(ErrorCode::kInvalidArgument, "a CPU is both online and offline");
    max_cpu_id = std::max(max_cpu_id, id);
  }
  physinfo_ = {static_cast<uint32_t>(config_.workload.cpu_ids.size()), max_cpu_id,
               config_.workload.cpu_khz};
  online_ = config_.workload.cpu_ids;

  auto memory = TraceMemory::Create(
      {config_.workload.cpu_ids, max_cpu_id, config_.nr_cpus_limit, config_.shm_path});
  if (!memory) return memory.error();
  memory_.emplace(std::move(*memory));
  auto notifier = EventFdNotifier::Create();
  if (!notifier) return notifier.error();
  notifier_.emplace(std::move(*notifier));
  fan_out_.first = &*notifier_;
  if (config_.keep_produced_log) log_ = std::make_unique<ProducedLog>(memory_->nr_cpu_ids());
  producer_ = std::make_unique<TraceProducer>(*memory_, &fan_out_, log_.get());

  if (config_.boot_tbuf_pages != 0) {
    if (auto st = producer_->SetSize(config_.boot_tbuf_pages); !st) return st;
    producer_->SetEventMask(tracefmt::ev::kAll);
  }
  if (replay) {
    replay->Attach(producer_.get());
    workload_ = std::move(replay);
  } else {
    workload_ = std::make_unique<SchedulerModel>(config_.workload, producer_.get());
  }
  // Tracing since boot with nobody reading: the buffers fill and records start to be lost.
  if (config_.boot_tbuf_pages != 0) {
    workload_->AdvanceTo(config_.boot_traced_ns);
    notifier_->Ack();
  }
  return {};
}

SimulatedHost::~SimulatedHost() {
  Stop();
}

tracefmt::Status SimulatedHost::SetBufferPages(uint32_t pages) {
  std::lock_guard lock(mutex_);
  return producer_->SetSize(pages);
}

tracefmt::Result<TbufInfo> SimulatedHost::EnableTracing(uint32_t pages) {
  std::lock_guard lock(mutex_);
  if (pages != 0) (void)producer_->SetSize(pages);  // as libxc: the size is best effort
  if (auto st = producer_->Enable(); !st) return st.error();
  return producer_->GetInfo();
}

void SimulatedHost::DisableTracing() {
  std::lock_guard lock(mutex_);
  producer_->Disable();
}

void SimulatedHost::SetEventMask(uint32_t mask) {
  std::lock_guard lock(mutex_);
  producer_->SetEventMask(mask);
}

PhysInfo SimulatedHost::physinfo() const {
  std::lock_guard lock(mutex_);
  return physinfo_;
}

std::vector<uint32_t> SimulatedHost::online_cpus() const {
  std::lock_guard lock(mutex_);
  return online_;
}

tracefmt::Status SimulatedHost::BringCpuOnline(uint32_t cpu) {
  const std::vector<uint32_t>& offline = config_.offline_cpu_ids;
  if (std::find(offline.begin(), offline.end(), cpu) == offline.end())
    return MakeError(ErrorCode::kInvalidArgument,
                     "cpu " + std::to_string(cpu) + " is not one of the host's offline CPUs");
  std::lock_guard lock(mutex_);
  if (std::binary_search(online_.begin(), online_.end(), cpu)) return {};
  online_.insert(std::upper_bound(online_.begin(), online_.end(), cpu), cpu);
  physinfo_.nr_cpus = static_cast<uint32_t>(online_.size());
  return {};
}

void SimulatedHost::SetCpuMask(std::span<const uint8_t> bitmap) {
  std::lock_guard lock(mutex_);
  producer_->SetCpuMask(bitmap);
}

TbufInfo SimulatedHost::tbuf_info() const {
  std::lock_guard lock(mutex_);
  return producer_->GetInfo();
}

bool SimulatedHost::tracing_enabled() const {
  std::lock_guard lock(mutex_);
  return producer_->enabled();
}

std::span<std::byte> SimulatedHost::MapPages(uint32_t first_page, uint32_t count) {
  std::lock_guard lock(mutex_);
  return memory_->Pages(first_page, count);
}

std::span<std::byte> SimulatedHost::TInfo() {
  std::lock_guard lock(mutex_);
  return memory_->TInfo();
}

std::span<std::byte> SimulatedHost::CpuBuffer(uint32_t cpu) {
  std::lock_guard lock(mutex_);
  return memory_->CpuBuffer(cpu);
}

uint32_t SimulatedHost::data_size() const {
  std::lock_guard lock(mutex_);
  return memory_->allocated() ? memory_->data_size() : 0;
}

void SimulatedHost::set_extra_listener(HighWaterListener* listener) {
  std::lock_guard lock(mutex_);
  fan_out_.second = listener;
}

void SimulatedHost::Advance(uint64_t ns) {
  std::lock_guard lock(mutex_);
  workload_->AdvanceTo(workload_->now_ns() + ns);
}

uint64_t SimulatedHost::now_ns() const {
  std::lock_guard lock(mutex_);
  return workload_->now_ns();
}

tracefmt::Status SimulatedHost::StartRealtime(double speed) {
  if (!(speed > 0) || !std::isfinite(speed))
    return MakeError(ErrorCode::kInvalidArgument, "speed must be positive and finite");
  std::lock_guard lock(runner_mutex_);
  if (runner_.joinable()) return MakeError(ErrorCode::kInvalidArgument, "already running");
  stop_ = false;
  runner_ = std::thread([this, speed] { RunRealtime(speed); });
  return {};
}

void SimulatedHost::Stop() {
  {
    std::lock_guard lock(runner_mutex_);
    stop_ = true;
  }
  runner_cv_.notify_all();
  if (runner_.joinable()) runner_.join();
}

void SimulatedHost::RunRealtime(double speed) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point wall_start = Clock::now();
  const uint64_t sim_start = now_ns();
  // One millisecond of wall time per step: fine enough for a consumer's latency to matter.
  constexpr auto kTick = std::chrono::milliseconds(1);
  // A step simulates at most a few ticks' worth. Where the host cannot simulate as fast as asked,
  // simulated time falls behind the wall clock instead of each step growing with the backlog: a
  // step holds the host's lock, and an unbounded one starved the consumer and made Stop wait.
  const auto max_step_ns = static_cast<uint64_t>(4e6 * speed) + 1;
  std::unique_lock lock(runner_mutex_);
  while (!runner_cv_.wait_for(lock, kTick, [this] { return stop_; })) {
    const auto elapsed = std::chrono::duration<double, std::nano>(Clock::now() - wall_start);
    const auto target = sim_start + static_cast<uint64_t>(elapsed.count() * speed);
    std::lock_guard host_lock(mutex_);
    const uint64_t now = workload_->now_ns();
    if (target > now) workload_->AdvanceTo(std::min(target, now + max_step_ns));
  }
}

Truth SimulatedHost::TruthSnapshot() const {
  std::lock_guard lock(mutex_);
  Truth t = workload_->TruthNow();
  // Online CPUs the workload does not know of (a replay) still have stats.
  return t;
}

std::vector<DomainInfo> SimulatedHost::Domains() const {
  std::lock_guard lock(mutex_);
  return workload_->LiveDomains();
}

bool SimulatedHost::VcpuCpuTime(uint16_t domid, uint32_t vcpu, uint64_t& ns) const {
  std::lock_guard lock(mutex_);
  return workload_->VcpuCpuTime(domid, vcpu, ns);
}

std::vector<DomainInfo> SimulatedHost::Domains(uint64_t& tsc_now) const {
  std::lock_guard lock(mutex_);
  tsc_now = workload_->TscNow();
  return workload_->LiveDomains();
}

}  // namespace simulator
