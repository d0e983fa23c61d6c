// xenbaked/simulated_hypervisor.h — the Hypervisor interface over an in-process simulated host.
//
// `xenbaked --simulate` (and the default when no hypervisor is present) runs the daemon against a
// simulator::SimulatedHost in the same process: the same t_info parsing and frame mapping as on
// Xen (through the host's MapPages), its eventfd as VIRQ_TBUF, its domain list. Time is the
// host's: real time from a thread of its own (StartRealtime) in the daemon, Advance() in tests.
//
//   auto host = simulator::SimulatedHost::Create(config);
//   SimulatedHypervisor hv(**host);
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

#include "simulator/simulated_host.h"
#include "xenbaked/hypervisor.h"

namespace xenbaked {

class SimulatedHypervisor final : public Hypervisor {
 public:
  // `host` must outlive this object.
  explicit SimulatedHypervisor(simulator::SimulatedHost& host) : host_(host) {}

  std::string_view name() const override { return "simulated"; }
  tracefmt::Result<PhysInfo> GetPhysInfo() override;
  tracefmt::Result<TraceBuffers> EnableTracing(const TraceSetup& setup) override;
  int EventFd() const override { return host_.notify_fd(); }
  tracefmt::Status AckEvent() override;
  tracefmt::Status DisableTracing() override;
  tracefmt::Result<uint32_t> GetEventMask() override;
  tracefmt::Status SetEventMask(uint32_t mask) override;
  tracefmt::Status SetCpuMask(const std::vector<uint32_t>& cpus) override;
  tracefmt::Result<std::vector<DomainInfo>> ListDomains() override;
  tracefmt::Result<std::string> DomainName(uint32_t domid) override;
  tracefmt::Result<std::vector<uint32_t>> OnlineCpus() override { return host_.online_cpus(); }
  // The simulator's truth, with the host's newest TSC as the read instant; kUnsupported for a
  // replayed capture (it knows no per-vCPU running time).
  tracefmt::Result<VcpuCpuTimes> ReadVcpuCpuTimes() override;

  simulator::SimulatedHost& host() { return host_; }

 private:
  simulator::SimulatedHost& host_;
  // Names as the host had them at names_read_: a publication that names a thousand new domains
  // takes the host's lock (which its producer needs) and copies its domain list once, not once
  // per domain. Read again when older than 100 ms, so a reused id gets its new name.
  std::unordered_map<uint32_t, std::string> names_;
  std::chrono::steady_clock::time_point names_read_{};
};

}  // namespace xenbaked
