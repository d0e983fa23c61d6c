// xenbaked/xen_hypervisor.h — the Hypervisor interface on Xen's own libraries.
//
// libxenctrl (physinfo, XEN_SYSCTL_tbuf_op, the domain list), libxenforeignmemory (mapping
// t_info and each CPU's buffer from DOMID_XEN), libxenevtchn (VIRQ_TBUF) and libxenstore (domain
// names). Runs unchanged on a real dom0 and, with LD_PRELOAD=libxenbake-shim.so, against a
// running xenbake-sim. Xen's headers stay inside xen_hypervisor.cc (they need extern "C" and GNU
// extensions), so this header is plain C++.
//
//   if (XenHypervisor::Present()) {
//     auto hv = XenHypervisor::Open(log);
//     if (!hv) die(hv.error().Describe());
//   }
#pragma once

#include <memory>

#include "xenbaked/hypervisor.h"
#include "xenbaked/log.h"

struct xs_handle;

namespace xenbaked {

class XenHypervisor final : public Hypervisor {
 public:
  // Whether this looks like a Xen dom0 (/dev/xen/privcmd or /proc/xen/privcmd exists), or the
  // libxen shim is loaded (XENBAKE_SIM set or LD_PRELOAD naming it).
  static bool Present();
  // Opens libxenctrl, libxenforeignmemory and libxenevtchn; libxenstore lazily (names are
  // optional: without xenstored, domains are listed without names).
  static tracefmt::Result<std::unique_ptr<XenHypervisor>> Open(Logger& log);
  ~XenHypervisor() override;

  std::string_view name() const override { return "xen"; }
  tracefmt::Result<PhysInfo> GetPhysInfo() override;
  tracefmt::Result<TraceBuffers> EnableTracing(const TraceSetup& setup) override;
  int EventFd() const override;
  tracefmt::Status AckEvent() override;
  tracefmt::Status DisableTracing() override;
  tracefmt::Result<uint32_t> GetEventMask() override;
  tracefmt::Status SetEventMask(uint32_t mask) override;
  tracefmt::Status SetCpuMask(const std::vector<uint32_t>& cpus) override;
  tracefmt::Result<std::vector<DomainInfo>> ListDomains() override;
  tracefmt::Result<std::string> DomainName(uint32_t domid) override;
  tracefmt::Result<std::vector<uint32_t>> OnlineCpus() override;
  // xc_domain_getinfolist, then xc_vcpu_getinfo for each vCPU up to max_vcpu_id; the instance is
  // a hash of the domain handle; read_tsc is the TSC after the last query (x86 dom0, whose TSC
  // is Xen's; 0 under the libxen shim, whose simulator has a clock of its own).
  tracefmt::Result<VcpuCpuTimes> ReadVcpuCpuTimes() override;

  struct Handles;  // the libxen handles and mappings (defined with Xen's headers)

 private:
  XenHypervisor(std::unique_ptr<Handles> handles, Logger& log);
  struct xs_handle* Xenstore();  // null without xenstore
  std::unique_ptr<Handles> h_;
  Logger& log_;
};

}  // namespace xenbaked
