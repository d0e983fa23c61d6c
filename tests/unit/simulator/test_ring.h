// A tiny consumer for the simulator's tests: drains one CPU's ring the way xentrace does.
#pragma once

#include <cstdint>
#include <vector>

#include "simulator/trace_memory.h"
#include "tracefmt/record.h"
#include "tracefmt/ring.h"

namespace simulator::testing {

struct Drained {
  std::vector<tracefmt::Record> records;
  tracefmt::RingDrain drain;
};

// Reads everything between cons and prod, publishes cons = the new position.
inline Drained DrainCpu(TraceMemory& memory, uint32_t cpu, uint32_t max_bytes = ~0u) {
  Drained out;
  const uint32_t prod = memory.LoadProd(cpu);
  const uint32_t cons = memory.LoadCons(cpu);
  out.drain = tracefmt::DrainRing(
      memory.CpuData(cpu), cons, prod, max_bytes, [](std::span<const std::byte>) {},
      [&](const tracefmt::Record& r) { out.records.push_back(r); });
  memory.StoreCons(cpu, out.drain.new_cons);
  return out;
}

inline uint32_t Unconsumed(TraceMemory& memory, uint32_t cpu) {
  return tracefmt::RingUnconsumed(memory.data_size(), memory.LoadCons(cpu), memory.LoadProd(cpu));
}

}  // namespace simulator::testing
