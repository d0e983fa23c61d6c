// simulator/simulated_host.h — a whole simulated Xen host behind one narrow facade.
//
// What the daemon's in-process `--simulate` mode and the tests use instead of libxenctrl: host
// facts (xc_physinfo), trace-buffer control (XEN_SYSCTL_tbuf_op), the t_info area and each CPU's
// buffer as Xen lays them out, VIRQ_TBUF as an fd, the domain list, and the ground truth.
//
//   simulator::HostConfig config;
//   config.workload.cpu_ids = {0, 1, 2, 3};
//   config.workload.domains = 8;
//   auto host = simulator::SimulatedHost::Create(config);
//   if (!host) die(host.error().Describe());
//   auto info = (*host)->EnableTracing(/*pages=*/32);     // like xc_tbuf_enable
//   std::span<std::byte> t_info = (*host)->MapPages(info->t_info_first_page,
//                                                    info->t_info_bytes / 4096);
//   ... parse t_info, MapPages() each CPU's frame list, as on Xen ...
//   (*host)->Advance(/*ns=*/50'000'000);            // deterministic: tests use this
//   poll({(*host)->notify_fd(), POLLIN}); (*host)->AckNotification();
//   ... drain rings with tracefmt::DrainRing, publish cons ...
//   simulator::Truth truth = (*host)->TruthSnapshot();
//
// Or in real time: (*host)->StartRealtime(/*speed=*/1.0); ... (*host)->Stop();
//
// Thread safety: every method may be called from any thread. The rings themselves are shared
// memory: the consumer reads prod and writes cons through atomics, without any lock, as on Xen.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "simulator/notifier.h"
#include "simulator/produced_log.h"
#include "simulator/producer.h"
#include "simulator/scheduler_model.h"
#include "simulator/trace_memory.h"
#include "simulator/truth.h"

namespace simulator {

struct HostConfig {
  WorkloadConfig workload;                       // cpu_ids are the online CPUs
  std::vector<uint32_t> offline_cpu_ids;         // counted in max_cpu_id, never get a buffer
  uint32_t nr_cpus_limit = kDefaultNrCpusLimit;  // Xen's NR_CPUS
  // tbuf_size= on Xen's command line: buffers exist from boot, tracing on with mask TRC_ALL, and
  // the workload has run `boot_traced_ns` with nobody consuming, so at first map the buffers are
  // full and records are being lost. Later size requests are refused, as on Xen.
  uint32_t boot_tbuf_pages = 0;
  uint64_t boot_traced_ns = 2'000'000'000;
  std::string shm_path;            // empty: private memory; else a file the shim can map
  bool keep_produced_log = false;  // keep every written byte and dropped record (tests, checks)
  std::string replay_path;         // non-empty: replay this capture instead of running the model
  double replay_speed = 1.0;       // replay only: capture seconds per simulated second
};

struct PhysInfo {
  uint32_t nr_cpus = 0;     // online
  uint32_t max_cpu_id = 0;  // offline and sparse ids included
  uint64_t cpu_khz = 0;
};

class SimulatedHost {
 public:
  static tracefmt::Result<std::unique_ptr<SimulatedHost>> Create(HostConfig config);
  ~SimulatedHost();
  SimulatedHost(const SimulatedHost&) = delete;
  SimulatedHost& operator=(const SimulatedHost&) = delete;

  PhysInfo physinfo() const;
  const std::string& shm_path() const { return config_.shm_path; }
  // The CPUs online now, ascending: the workload's, and any brought online since.
  std::vector<uint32_t> online_cpus() const;
  // CPU hotplug, as `xen-hptool cpu-online` does it: one of HostConfig::offline_cpu_ids comes
  // online. Xen allocates trace buffers once, for the CPUs online at that moment, so this CPU has
  // none; and the workload schedules nothing there. Its time is therefore traced by no one —
  // exactly what a consumer must notice on a real host. kInvalidArgument for an id that is not
  // an offline CPU.
  tracefmt::Status BringCpuOnline(uint32_t cpu);

  // --- XEN_SYSCTL_tbuf_op ----------------------------------------------------------------------
  // One shot per "boot" (kInvalidArgument afterwards). Also turns tracing on, as Xen does.
  tracefmt::Status SetBufferPages(uint32_t pages);
  // xc_tbuf_enable: tries SetBufferPages(pages) (a refusal is ignored), turns tracing on and
  // returns where t_info is. Fails only when no buffers exist.
  tracefmt::Result<TbufInfo> EnableTracing(uint32_t pages);
  // Stops writing; forgets pending losses. Once it returns, no record is written.
  void DisableTracing();
  void SetEventMask(uint32_t mask);
  void SetCpuMask(std::span<const uint8_t> bitmap);  // xc_cpumap_t: bit n = CPU n
  TbufInfo tbuf_info() const;
  bool tracing_enabled() const;

  // --- memory, as xenforeignmemory_map(DOMID_XEN, frames) would give it ------------------------
  // Pages [first_page, first_page + count): empty when out of range. Valid for the host's life.
  std::span<std::byte> MapPages(uint32_t first_page, uint32_t count);
  std::span<std::byte> TInfo();
  std::span<std::byte> CpuBuffer(uint32_t cpu);  // header (cons, prod) + data; empty if none
  uint32_t data_size() const;                    // 0 before buffers exist

  // --- VIRQ_TBUF
  // ----------------------------------------------------------------------------------- Readable
  // after a buffer crossed half full; AckNotification() makes it unreadable again.
  int notify_fd() const { return notifier_->fd(); }
  uint64_t AckNotification() { return notifier_->Ack(); }
  // Another party to tell (the cross-process server); not owned; set before StartRealtime.
  void set_extra_listener(HighWaterListener* listener);

  // --- time
  // ----------------------------------------------------------------------------------------
  void Advance(uint64_t ns);  // by `ns` of simulated time; deterministic, never sleeps
  uint64_t now_ns() const;
  // Advances with the wall clock × speed from a thread of its own until Stop().
  tracefmt::Status StartRealtime(double speed);
  void Stop();

  // --- truth
  // ---------------------------------------------------------------------------------------
  Truth TruthSnapshot() const;
  std::vector<DomainInfo> Domains() const;  // like xc_domain_getinfolist + xenstore names
  // Domains() and the newest TSC reached, read at one instant (0: the workload cannot tell).
  std::vector<DomainInfo> Domains(uint64_t& tsc_now) const;
  // One vCPU's running time so far, as xc_vcpu_getinfo reads it; false: no such live vCPU.
  bool VcpuCpuTime(uint16_t domid, uint32_t vcpu, uint64_t& ns) const;
  // Runs `fn(log)` under the host's lock; `log` is null unless keep_produced_log.
  template <typename Fn>
  void WithProducedLog(Fn&& fn) const {
    std::lock_guard lock(mutex_);
    fn(static_cast<const ProducedLog*>(log_.get()));
  }

 private:
  class FanOut final : public HighWaterListener {
   public:
    void OnHighWater(uint32_t cpu) override;
    HighWaterListener* first = nullptr;
    HighWaterListener* second = nullptr;
  };

  explicit SimulatedHost(HostConfig config) : config_(std::move(config)) {}
  tracefmt::Status Init();
  void RunRealtime(double speed);

  HostConfig config_;
  mutable std::mutex mutex_;  // guards everything below but the notifier
  PhysInfo physinfo_;
  std::vector<uint32_t> online_;  // ascending
  std::optional<TraceMemory> memory_;
  std::optional<EventFdNotifier> notifier_;
  FanOut fan_out_;
  std::unique_ptr<ProducedLog> log_;
  std::unique_ptr<TraceProducer> producer_;
  std::unique_ptr<Workload> workload_;

  std::mutex runner_mutex_;
  std::condition_variable runner_cv_;
  bool stop_ = false;
  std::thread runner_;
};

}  // namespace simulator
