// Built with -std=gnu++20: Xen 4.17's public headers use GNU extensions (anonymous unions,
// __align8__) and have no extern "C" guards of their own.
#include "xenbaked/xen_hypervisor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif
#include <optional>

extern "C" {
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xenstore.h>
}

#include "xenbaked/t_info.h"

namespace xenbaked {

using tracefmt::ErrorCode;
using tracefmt::MakeError;
using tracefmt::MakeSystemError;

struct Mapping {
  void* addr = nullptr;
  size_t pages = 0;
};

struct XenHypervisor::Handles {
  xc_interface* xch = nullptr;
  xenforeignmemory_handle* fmem = nullptr;
  xenevtchn_handle* xce = nullptr;
  struct xs_handle* xs = nullptr;
  bool xs_tried = false;
  xenevtchn_port_or_error_t port = -1;
  Mapping t_info;
  std::vector<Mapping> buffers;

  ~Handles() {
    for (Mapping& m : buffers)
      if (m.addr) xenforeignmemory_unmap(fmem, m.addr, m.pages);
    if (t_info.addr) xenforeignmemory_unmap(fmem, t_info.addr, t_info.pages);
    if (xce && port >= 0) xenevtchn_unbind(xce, static_cast<evtchn_port_t>(port));
    if (xce) xenevtchn_close(xce);
    if (fmem) xenforeignmemory_close(fmem);
    if (xch) xc_interface_close(xch);
    if (xs) xs_close(xs);
  }
};

namespace {
// Maps `frames` of DOMID_XEN linearly.
tracefmt::Result<Mapping> MapFrames(xenforeignmemory_handle* fmem, std::span<const uint32_t> frames,
                                    int prot) {
  std::vector<xen_pfn_t> pfns(frames.begin(), frames.end());
  void* addr = xenforeignmemory_map(fmem, DOMID_XEN, prot, pfns.size(), pfns.data(), nullptr);
  if (addr == nullptr) return MakeSystemError(fmt::format("mapping {} frames", frames.size()));
  return Mapping{addr, pfns.size()};
}
}  // namespace

bool XenHypervisor::Present() {
  std::error_code ec;
  if (std::filesystem::exists("/dev/xen/privcmd", ec) ||
      std::filesystem::exists("/proc/xen/privcmd", ec))
    return true;
  if (std::getenv("XENBAKE_SIM") != nullptr) return true;
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, "xenbake-shim") != nullptr;
}

tracefmt::Result<std::unique_ptr<XenHypervisor>> XenHypervisor::Open(Logger& log) {
  auto h = std::make_unique<Handles>();
  h->xch = xc_interface_open(nullptr, nullptr, 0);
  if (h->xch == nullptr) return MakeSystemError("xc_interface_open (is this dom0, as root?)");
  h->fmem = xenforeignmemory_open(nullptr, 0);
  if (h->fmem == nullptr) return MakeSystemError("xenforeignmemory_open");
  h->xce = xenevtchn_open(nullptr, 0);
  if (h->xce == nullptr) return MakeSystemError("xenevtchn_open");
  return std::unique_ptr<XenHypervisor>(new XenHypervisor(std::move(h), log));
}

XenHypervisor::XenHypervisor(std::unique_ptr<Handles> handles, Logger& log)
    : h_(std::move(handles)), log_(log) {}
XenHypervisor::~XenHypervisor() = default;

tracefmt::Result<PhysInfo> XenHypervisor::GetPhysInfo() {
  xc_physinfo_t info;
  std::memset(&info, 0, sizeof info);
  if (xc_physinfo(h_->xch, &info) != 0) return MakeSystemError("xc_physinfo");
  return PhysInfo{.nr_cpus = info.nr_cpus, .max_cpu_id = info.max_cpu_id, .cpu_khz = info.cpu_khz};
}

tracefmt::Result<TraceBuffers> XenHypervisor::EnableTracing(const TraceSetup& setup) {
  tracefmt::Result<PhysInfo> phys = GetPhysInfo();
  if (!phys) return phys.error();
  if (setup.event_mask != 0) {
    if (tracefmt::Status st = SetEventMask(setup.event_mask); !st) return st.error();
  }
  if (!setup.cpu_mask.empty()) {
    if (tracefmt::Status st = SetCpuMask(setup.cpu_mask); !st) return st.error();
  }
  // The size is one-shot per boot (and tbuf_size= on Xen's command line wins); `size` comes back
  // as the t_info area's size in bytes, not a CPU buffer's.
  unsigned long t_info_mfn = 0;
  unsigned long t_info_bytes = 0;
  if (xc_tbuf_enable(h_->xch, setup.pages_per_cpu, &t_info_mfn, &t_info_bytes) != 0)
    return MakeSystemError("xc_tbuf_enable");
  if (t_info_bytes == 0) return MakeError(ErrorCode::kNotFound, "xc_tbuf_enable: no t_info area");

  // t_info's frames are contiguous from the one returned.
  std::vector<uint32_t> t_info_frames(TInfoPages(t_info_bytes));
  for (size_t i = 0; i < t_info_frames.size(); ++i)
    t_info_frames[i] = static_cast<uint32_t>(t_info_mfn + i);
  tracefmt::Result<Mapping> t_info = MapFrames(h_->fmem, t_info_frames, PROT_READ);
  if (!t_info) return t_info.error();
  h_->t_info = *t_info;
  const std::span<const std::byte> t_info_bytes_view(static_cast<const std::byte*>(t_info->addr),
                                                     t_info->pages * 4096);
  tracefmt::Result<TInfoLayout> layout = ParseTInfo(t_info_bytes_view, phys->max_cpu_id + 1);
  if (!layout) return layout.error();

  TraceBuffers buffers{.pages_per_cpu = layout->pages_per_cpu, .rings = {}};
  for (const CpuFrames& c : layout->cpus) {
    // Read-write: we publish cons.
    tracefmt::Result<Mapping> m = MapFrames(h_->fmem, c.frames, PROT_READ | PROT_WRITE);
    if (!m) return m.error();
    h_->buffers.push_back(*m);
    buffers.rings.emplace_back(
        c.cpu, std::span<std::byte>(static_cast<std::byte*>(m->addr), m->pages * 4096));
  }

  h_->port = xenevtchn_bind_virq(h_->xce, VIRQ_TBUF);
  if (h_->port < 0)
    return MakeSystemError("xenevtchn_bind_virq(VIRQ_TBUF) (is another trace consumer running?)");
  // Non-blocking, so AckEvent never blocks when woken for nothing.
  const int fd = xenevtchn_fd(h_->xce);
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  log_.Info(
      "libxenctrl: tracing enabled, t_info at mfn {:#x} ({} bytes); libxenforeignmemory: "
      "t_info and {} CPU buffer(s) of {} pages mapped; libxenevtchn: VIRQ_TBUF bound to port {}",
      t_info_mfn, t_info_bytes, buffers.rings.size(), buffers.pages_per_cpu, h_->port);
  return buffers;
}

int XenHypervisor::EventFd() const {
  return h_->port >= 0 ? xenevtchn_fd(h_->xce) : -1;
}

tracefmt::Status XenHypervisor::AckEvent() {
  const xenevtchn_port_or_error_t port = xenevtchn_pending(h_->xce);
  if (port < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
    return MakeSystemError("xenevtchn_pending");
  }
  if (xenevtchn_unmask(h_->xce, static_cast<evtchn_port_t>(port)) != 0)
    return MakeSystemError("xenevtchn_unmask");
  return {};
}

tracefmt::Status XenHypervisor::DisableTracing() {
  if (xc_tbuf_disable(h_->xch) != 0) return MakeSystemError("xc_tbuf_disable");
  return {};
}

tracefmt::Result<uint32_t> XenHypervisor::GetEventMask() {
  struct xen_sysctl sysctl;
  std::memset(&sysctl, 0, sizeof sysctl);
  sysctl.cmd = XEN_SYSCTL_tbuf_op;
  sysctl.interface_version = XEN_SYSCTL_INTERFACE_VERSION;
  sysctl.u.tbuf_op.cmd = XEN_SYSCTL_TBUFOP_get_info;
  if (xc_sysctl(h_->xch, &sysctl) != 0) return MakeSystemError("XEN_SYSCTL_TBUFOP_get_info");
  return sysctl.u.tbuf_op.evt_mask;
}

tracefmt::Status XenHypervisor::SetEventMask(uint32_t mask) {
  if (xc_tbuf_set_evt_mask(h_->xch, mask) != 0) return MakeSystemError("xc_tbuf_set_evt_mask");
  return {};
}

tracefmt::Status XenHypervisor::SetCpuMask(const std::vector<uint32_t>& cpus) {
  xc_cpumap_t map = xc_cpumap_alloc(h_->xch);
  if (map == nullptr) return MakeSystemError("xc_cpumap_alloc");
  const int max_cpus = xc_get_max_cpus(h_->xch);
  if (cpus.empty()) {
    for (int cpu = 0; cpu < max_cpus; ++cpu) map[cpu / 8] |= static_cast<uint8_t>(1u << (cpu % 8));
  }
  for (uint32_t cpu : cpus)
    if (static_cast<int>(cpu) < max_cpus) map[cpu / 8] |= static_cast<uint8_t>(1u << (cpu % 8));
  const int rc = xc_tbuf_set_cpu_mask(h_->xch, map);
  std::free(map);
  if (rc != 0) return MakeSystemError("xc_tbuf_set_cpu_mask");
  return {};
}

tracefmt::Result<std::vector<uint32_t>> XenHypervisor::OnlineCpus() {
  // XEN_SYSCTL_getcpuinfo gives each CPU id's idle time, and Xen reports 0 for an offline CPU
  // (physinfo only counts the online ones; it does not say which).
  const int max_cpus = xc_get_max_cpus(h_->xch);
  if (max_cpus <= 0) return MakeSystemError("xc_get_max_cpus");
  std::vector<xc_cpuinfo_t> info(static_cast<size_t>(max_cpus));
  int reported = 0;
  if (xc_getcpuinfo(h_->xch, max_cpus, info.data(), &reported) != 0)
    return MakeSystemError("xc_getcpuinfo");
  std::vector<uint32_t> online;
  for (int cpu = 0; cpu < std::min(reported, max_cpus); ++cpu)
    if (info[static_cast<size_t>(cpu)].idletime != 0) online.push_back(static_cast<uint32_t>(cpu));
  return online;
}

namespace {
// One read of /local/domain/<id>/name; nullopt when xenstore has none.
std::optional<std::string> ReadName(struct xs_handle* xs, uint32_t domid) {
  const std::string path = fmt::format("/local/domain/{}/name", domid);
  unsigned int len = 0;
  char* name = static_cast<char*>(xs_read(xs, XBT_NULL, path.c_str(), &len));
  if (name == nullptr) return std::nullopt;
  std::string out(name, len);
  std::free(name);
  return out;
}
}  // namespace

// xenstore is opened at the first name wanted, so a host without xenstored still traces.
struct xs_handle* XenHypervisor::Xenstore() {
  if (!h_->xs_tried) {
    h_->xs_tried = true;
    h_->xs = xs_open(XS_OPEN_READONLY);
    if (h_->xs == nullptr) log_.Notice("xenstore not reachable: domains are listed without names");
  }
  return h_->xs;
}

tracefmt::Result<std::string> XenHypervisor::DomainName(uint32_t domid) {
  struct xs_handle* xs = Xenstore();
  if (xs == nullptr) return MakeError(ErrorCode::kUnsupported, "xenstore not reachable");
  std::optional<std::string> name = ReadName(xs, domid);
  if (!name) return MakeSystemError(fmt::format("xenstore: /local/domain/{}/name", domid));
  return std::move(*name);
}

namespace {
// Every domain Xen has, to `each`, listed in batches with xc_domain_getinfolist.
tracefmt::Status ForEachDomainInfo(xc_interface* xch,
                                   const std::function<void(const xc_domaininfo_t&)>& each) {
  std::vector<xc_domaininfo_t> batch(256);
  uint32_t next = 0;
  for (;;) {
    const int n =
        xc_domain_getinfolist(xch, next, static_cast<unsigned>(batch.size()), batch.data());
    if (n < 0) return MakeSystemError("xc_domain_getinfolist");
    for (int i = 0; i < n; ++i) each(batch[static_cast<size_t>(i)]);
    if (n < static_cast<int>(batch.size())) return {};
    next = batch.back().domain + 1u;
  }
}
}  // namespace

tracefmt::Result<std::vector<DomainInfo>> XenHypervisor::ListDomains() {
  struct xs_handle* xs = Xenstore();
  std::vector<DomainInfo> out;
  tracefmt::Status listed = ForEachDomainInfo(h_->xch, [&](const xc_domaininfo_t& d) {
    DomainInfo info{.domid = d.domain,
                    .name = {},
                    .max_vcpu_id = d.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID ? 0 : d.max_vcpu_id,
                    .dying = (d.flags & XEN_DOMINF_dying) != 0,
                    .shutdown = (d.flags & XEN_DOMINF_shutdown) != 0};
    if (xs != nullptr) info.name = ReadName(xs, d.domain).value_or(std::string());
    out.push_back(std::move(info));
  });
  if (!listed) return listed.error();
  return out;
}

namespace {
// FNV-1a over the domain handle (the toolstack's UUID): a recreated domain gets a new one unless
// its configuration fixes the UUID, and then cpu_time going back still tells the reset.
uint64_t HandleHash(const xen_domain_handle_t handle) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < sizeof(xen_domain_handle_t); ++i) h = (h ^ handle[i]) * 0x100000001b3u;
  return h | 1u;  // never 0, which means unknown
}

uint64_t ReadTsc() {
  if (std::getenv("XENBAKE_SIM") != nullptr) return 0;  // the shim: the simulator's clock differs
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return 0;
#endif
}
}  // namespace

tracefmt::Result<VcpuCpuTimes> XenHypervisor::ReadVcpuCpuTimes() {
  VcpuCpuTimes out;
  tracefmt::Status listed = ForEachDomainInfo(h_->xch, [&](const xc_domaininfo_t& d) {
    if ((d.flags & XEN_DOMINF_dying) != 0 || d.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID) return;
    const uint64_t instance = HandleHash(d.handle);
    // Xen bounds max_vcpu_id by the domain's max_vcpus (at most a few thousand).
    for (uint32_t vcpu = 0; vcpu <= d.max_vcpu_id; ++vcpu) {
      xc_vcpuinfo_t info;
      std::memset(&info, 0, sizeof info);
      // A domain destroyed since the listing fails with ESRCH: it simply is not read.
      if (xc_vcpu_getinfo(h_->xch, d.domain, vcpu, &info) != 0) break;
      if (!info.online) continue;
      out.vcpus.push_back(
          {.domid = d.domain, .vcpu = vcpu, .instance = instance, .cpu_time_ns = info.cpu_time});
    }
  });
  if (!listed) return listed.error();
  out.read_tsc = ReadTsc();
  return out;
}

}  // namespace xenbaked
