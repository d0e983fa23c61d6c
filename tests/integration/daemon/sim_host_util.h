// Helpers of the daemon's tests against an in-process simulated host: a host of a given shape,
// and one deterministic step of the host and the daemon's clock together.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>

#include "simulator/simulated_host.h"
#include "xenbaked/scheduler.h"

namespace xenbaked::simtest {

// CPUs 0..cpus-1, `domains` (Domain-0 included) of `vcpus` vCPUs each, seed 7.
inline simulator::HostConfig SimConfig(uint32_t cpus, uint32_t domains, uint32_t vcpus) {
  simulator::HostConfig c;
  c.workload.cpu_ids.clear();
  for (uint32_t i = 0; i < cpus; ++i) c.workload.cpu_ids.push_back(i);
  c.workload.domains = domains;
  c.workload.vcpus_per_domain = vcpus;
  c.workload.seed = 7;
  return c;
}

// Simulated time and the loop's clock advance by `ns`, then whatever fell due runs; never sleeps.
inline void Step(simulator::SimulatedHost& host, ManualScheduler& scheduler,
                 boost::asio::io_context& io, uint64_t ns) {
  host.Advance(ns);
  scheduler.Advance(ns);
  io.restart();
  io.poll();
}

}  // namespace xenbaked::simtest
