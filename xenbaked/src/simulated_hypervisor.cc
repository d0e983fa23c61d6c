#include "xenbaked/simulated_hypervisor.h"

#include <fmt/format.h>

#include "xenbaked/t_info.h"

namespace xenbaked {

tracefmt::Result<PhysInfo> SimulatedHypervisor::GetPhysInfo() {
  const simulator::PhysInfo p = host_.physinfo();
  return PhysInfo{.nr_cpus = p.nr_cpus, .max_cpu_id = p.max_cpu_id, .cpu_khz = p.cpu_khz};
}

tracefmt::Result<uint32_t> SimulatedHypervisor::GetEventMask() {
  return host_.tbuf_info().event_mask;
}

tracefmt::Status SimulatedHypervisor::SetEventMask(uint32_t mask) {
  host_.SetEventMask(mask);
  return {};
}

tracefmt::Status SimulatedHypervisor::SetCpuMask(const std::vector<uint32_t>& cpus) {
  std::vector<uint8_t> bitmap;
  if (cpus.empty()) {  // every CPU the host could have
    bitmap.assign(host_.physinfo().max_cpu_id / 8 + 1, 0xff);
  }
  for (uint32_t cpu : cpus) {
    if (bitmap.size() <= cpu / 8) bitmap.resize(cpu / 8 + 1);
    bitmap[cpu / 8] |= static_cast<uint8_t>(1u << (cpu % 8));
  }
  host_.SetCpuMask(bitmap);
  return {};
}

tracefmt::Result<TraceBuffers> SimulatedHypervisor::EnableTracing(const TraceSetup& setup) {
  if (setup.event_mask != 0) host_.SetEventMask(setup.event_mask);
  if (!setup.cpu_mask.empty()) (void)SetCpuMask(setup.cpu_mask);
  tracefmt::Result<simulator::TbufInfo> info = host_.EnableTracing(setup.pages_per_cpu);
  if (!info) return info.error();
  // As on Xen: the size reported is t_info's, the per-CPU size is in t_info itself.
  std::span<std::byte> t_info =
      host_.MapPages(info->t_info_first_page, TInfoPages(info->t_info_bytes));
  tracefmt::Result<TInfoLayout> layout = ParseTInfo(t_info, host_.physinfo().max_cpu_id + 1);
  if (!layout) return layout.error();
  TraceBuffers buffers{.pages_per_cpu = layout->pages_per_cpu, .rings = {}};
  for (const CpuFrames& c : layout->cpus) {
    if (!FramesContiguous(c.frames))
      return tracefmt::MakeError(tracefmt::ErrorCode::kUnsupported,
                                 fmt::format("cpu {}: simulated frames not contiguous", c.cpu));
    std::span<std::byte> mem = host_.MapPages(c.frames.front(), layout->pages_per_cpu);
    if (mem.empty())
      return tracefmt::MakeError(tracefmt::ErrorCode::kCorrupt,
                                 fmt::format("cpu {}: frames out of range", c.cpu));
    buffers.rings.emplace_back(c.cpu, mem);
  }
  return buffers;
}

tracefmt::Status SimulatedHypervisor::AckEvent() {
  host_.AckNotification();
  return {};
}

tracefmt::Status SimulatedHypervisor::DisableTracing() {
  host_.DisableTracing();
  return {};
}

tracefmt::Result<std::vector<DomainInfo>> SimulatedHypervisor::ListDomains() {
  std::vector<DomainInfo> out;
  for (const simulator::DomainInfo& d : host_.Domains())
    out.push_back({.domid = d.id,
                   .name = d.name,
                   .max_vcpu_id = d.vcpus ? d.vcpus - 1 : 0,
                   .dying = false,
                   .shutdown = false});
  return out;
}

tracefmt::Result<VcpuCpuTimes> SimulatedHypervisor::ReadVcpuCpuTimes() {
  VcpuCpuTimes out;
  const std::vector<simulator::DomainInfo> domains = host_.Domains(out.read_tsc);
  for (const simulator::DomainInfo& d : domains) {
    if (d.vcpu_cpu_time_ns.size() != d.vcpus)
      return tracefmt::MakeError(tracefmt::ErrorCode::kUnsupported,
                                 "the simulated workload keeps no per-vCPU running time");
    for (uint32_t v = 0; v < d.vcpus; ++v)
      out.vcpus.push_back(
          {.domid = d.id, .vcpu = v, .instance = d.instance, .cpu_time_ns = d.vcpu_cpu_time_ns[v]});
  }
  return out;
}

tracefmt::Result<std::string> SimulatedHypervisor::DomainName(uint32_t domid) {
  const auto now = std::chrono::steady_clock::now();
  if (now - names_read_ > std::chrono::milliseconds(100)) {
    names_.clear();
    for (const simulator::DomainInfo& d : host_.Domains()) names_[d.id] = d.name;
    names_read_ = now;
  }
  auto it = names_.find(domid);
  if (it != names_.end()) return it->second;
  return tracefmt::MakeError(tracefmt::ErrorCode::kNotFound, "no such domain");
}

}  // namespace xenbaked
