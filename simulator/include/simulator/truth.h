// simulator/truth.h — what really happened in a simulated run, to check consumers against.
//
// Times are simulated nanoseconds since the start of the run (boot), cumulative: to compare with
// a consumer that started at time T, subtract a snapshot taken at T. Per vCPU the four runstate
// times add up to the vCPU's lifetime (creation to destruction, or to now).
//
//   simulator::Truth t = host->TruthSnapshot();
//   for (const auto& d : t.domains) fmt::print("{} ran {} ns\n", d.id, d.TotalNs(kRunning));
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "simulator/producer.h"
#include "tracefmt/events.h"

namespace simulator {

inline constexpr size_t kRunstates = 4;  // running, runnable, blocked, offline (Xen's order)
inline constexpr size_t RunstateIndex(tracefmt::Runstate s) {
  return static_cast<size_t>(s);
}

struct VcpuTruth {
  uint16_t vcpu = 0;
  tracefmt::Runstate state = tracefmt::Runstate::kOffline;  // now (or at destruction)
  std::array<uint64_t, kRunstates> state_ns{};              // indexed by RunstateIndex
  uint64_t dispatches = 0;                                  // times it started running
  uint64_t wakes = 0;
  uint64_t blocks = 0;
  uint64_t preemptions = 0;  // switched out while still runnable
};

struct DomainTruth {
  uint16_t id = 0;
  std::string name;
  uint64_t created_ns = 0;
  uint64_t destroyed_ns = 0;  // 0 while alive
  bool alive = true;
  uint64_t hypercalls = 0;  // PV_HYPERCALL_V2 records emitted (written or not)
  uint64_t io_events = 0;   // I/O records emitted (event-channel sends, grant maps)
  std::vector<VcpuTruth> vcpus;

  uint64_t TotalNs(tracefmt::Runstate s) const;
  uint64_t TotalDispatches() const;
};

struct CpuTruth {
  uint32_t cpu = 0;
  bool has_buffer = false;
  CpuTraceStats trace;
};

// A CPU's truth as the producer counted it (no trace counts when `producer` is null).
CpuTruth CpuTruthFrom(uint32_t cpu, TraceProducer* producer);

struct Truth {
  uint64_t now_ns = 0;
  uint64_t cpu_khz = 0;
  uint64_t seed = 0;
  // Every domain that ever existed, in creation order (an id may appear twice: ids are reused
  // after destruction). The idle domain (32767) is included, one vCPU per physical CPU.
  std::vector<DomainTruth> domains;
  std::vector<CpuTruth> cpus;    // online CPUs, by id
  uint64_t records_emitted = 0;  // every record the model asked the producer for

  uint64_t TotalDropped() const;
  uint64_t TotalReported() const;  // counts carried by LOST_RECORDS records written
  uint64_t TotalWritten() const;
  // The live domain with this id, or null.
  const DomainTruth* FindLive(uint16_t id) const;
};

}  // namespace simulator
