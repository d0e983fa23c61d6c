#include "simulator/truth.h"

namespace simulator {

uint64_t DomainTruth::TotalNs(tracefmt::Runstate s) const {
  uint64_t total = 0;
  for (const VcpuTruth& v : vcpus) total += v.state_ns[RunstateIndex(s)];
  return total;
}

uint64_t DomainTruth::TotalDispatches() const {
  uint64_t total = 0;
  for (const VcpuTruth& v : vcpus) total += v.dispatches;
  return total;
}

CpuTruth CpuTruthFrom(uint32_t cpu, TraceProducer* producer) {
  CpuTruth out;
  out.cpu = cpu;
  if (producer != nullptr) {
    out.has_buffer = producer->memory().HasBuffer(cpu);
    out.trace = producer->stats(cpu);
  }
  return out;
}

uint64_t Truth::TotalDropped() const {
  uint64_t total = 0;
  for (const CpuTruth& c : cpus) total += c.trace.dropped;
  return total;
}

uint64_t Truth::TotalReported() const {
  uint64_t total = 0;
  for (const CpuTruth& c : cpus) total += c.trace.dropped_reported;
  return total;
}

uint64_t Truth::TotalWritten() const {
  uint64_t total = 0;
  for (const CpuTruth& c : cpus) total += c.trace.records_written;
  return total;
}

const DomainTruth* Truth::FindLive(uint16_t id) const {
  for (const DomainTruth& d : domains)
    if (d.alive && d.id == id) return &d;
  return nullptr;
}

}  // namespace simulator
