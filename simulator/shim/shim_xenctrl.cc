// libxenctrl 4.17's trace-consumer subset, backed by a running xenbake-sim. Compiled against
// Debian's <xenctrl.h> so every signature is checked against the real ABI.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "shim_connection.h"

#define XC_WANT_COMPAT_MAP_FOREIGN_API
extern "C" {
#include <xenctrl.h>
}

using simulator::SimDomainEntry;
using simulator::SimOp;
using simulator::SimReply;
using simulator::shim::Connection;

// The handle libxenctrl's callers hold: opaque to them, our connection to the simulator.
struct xc_interface_core {
  Connection conn;
};

namespace {

constexpr size_t kPage = 4096;

int Fail(int err) {
  errno = err;
  return -1;
}

// A simple control call: -1 with errno on a refusal or a broken connection.
int Control(xc_interface* xch, SimOp op, uint32_t arg = 0) {
  SimReply reply;
  if (!xch->conn.Call(op, arg, 0, {}, reply)) return -1;
  return reply.rc < 0 ? Fail(-reply.rc) : 0;
}

bool GetInfo(xc_interface* xch, uint32_t& mfn, uint32_t& bytes) {
  SimReply reply;
  if (!xch->conn.Call(SimOp::kTbufGetInfo, 0, 0, {}, reply)) return false;
  mfn = reply.values[1];
  bytes = reply.values[2];
  return true;
}

void* MapRange(xc_interface* xch, uint32_t dom, size_t pages, int prot, uint64_t first) {
  if (dom != DOMID_XEN) {  // only Xen's own frames exist here
    errno = EPERM;
    return nullptr;
  }
  std::vector<uint64_t> frames(pages);
  for (size_t i = 0; i < pages; ++i) frames[i] = first + i;
  return xch->conn.MapFrames(frames.data(), pages, prot, nullptr);
}

}  // namespace

extern "C" {

xc_interface* xc_interface_open(xentoollog_logger* /*logger*/,
                                xentoollog_logger* /*dombuild_logger*/, unsigned /*open_flags*/) {
  return simulator::shim::OpenHandle<xc_interface_core>();
}

int xc_interface_close(xc_interface* xch) {
  return simulator::shim::CloseHandle(xch);
}

int xc_physinfo(xc_interface* xch, xc_physinfo_t* info) {
  // CPUs come and go (the simulator's hotplug): ask for the online count each time, as Xen's
  // physinfo answers with num_online_cpus().
  SimReply online;
  if (!xch->conn.Call(SimOp::kCpuOnlineMap, 0, 0, {}, online)) return -1;
  std::memset(info, 0, sizeof *info);
  info->threads_per_core = 1;
  info->cores_per_socket = online.values[0];
  info->nr_cpus = online.values[0];
  info->max_cpu_id = xch->conn.max_cpu_id();
  info->nr_nodes = 1;
  info->cpu_khz = static_cast<uint32_t>(xch->conn.cpu_khz());
  info->total_pages = 1u << 20;
  info->free_pages = 1u << 18;
  return 0;
}

// Xen reports an offline CPU's idle time as 0 (it has no idle vCPU running); an online CPU's is
// its idle vCPU's running time. The simulator keeps no idle clock, so an online CPU reports 1 ns:
// what consumers test is zero or not.
int xc_getcpuinfo(xc_interface* xch, int max_cpus, xc_cpuinfo_t* info, int* nr_cpus) {
  if (max_cpus < 0 || (max_cpus > 0 && info == nullptr)) {
    errno = EINVAL;
    return -1;
  }
  std::vector<std::byte> map((xch->conn.max_cpu_id() / 8) + 1);
  SimReply reply;
  if (!xch->conn.Call(SimOp::kCpuOnlineMap, 0, 0, {}, reply, map)) return -1;
  const int count = std::min(max_cpus, static_cast<int>(xch->conn.max_cpu_id() + 1));
  for (int cpu = 0; cpu < count; ++cpu) {
    const bool online = (std::to_integer<unsigned>(map[static_cast<size_t>(cpu) / 8]) >>
                         (static_cast<unsigned>(cpu) % 8)) &
                        1u;
    info[cpu].idletime = online ? 1 : 0;
  }
  if (nr_cpus != nullptr) *nr_cpus = count;
  return 0;
}

int xc_get_max_cpus(xc_interface* xch) {
  return static_cast<int>(xch->conn.max_cpu_id() + 1);
}

int xc_get_cpumap_size(xc_interface* xch) {
  return (xc_get_max_cpus(xch) + 7) / 8;
}

xc_cpumap_t xc_cpumap_alloc(xc_interface* xch) {
  const int size = xc_get_cpumap_size(xch);
  if (size <= 0) return nullptr;
  return static_cast<xc_cpumap_t>(std::calloc(1, static_cast<size_t>(size)));
}

void xc_cpumap_setcpu(int cpu, xc_cpumap_t map) {
  map[cpu / 8] |= 1u << (cpu % 8);
}

int xc_tbuf_set_size(xc_interface* xch, unsigned long size) {
  return Control(xch, SimOp::kTbufSetSize, static_cast<uint32_t>(size));
}

// As libxc: the size is best effort (it can be set once per boot), then enable, then report
// where t_info is and how big it is.
int xc_tbuf_enable(xc_interface* xch, unsigned long pages, unsigned long* mfn,
                   unsigned long* size) {
  (void)xc_tbuf_set_size(xch, pages);
  if (Control(xch, SimOp::kTbufEnable) != 0) return -1;
  uint32_t t_info_mfn = 0, t_info_bytes = 0;
  if (!GetInfo(xch, t_info_mfn, t_info_bytes)) return -1;
  *mfn = t_info_mfn;
  *size = t_info_bytes;
  return 0;
}

int xc_tbuf_disable(xc_interface* xch) {
  return Control(xch, SimOp::kTbufDisable);
}

int xc_tbuf_get_size(xc_interface* xch, unsigned long* size) {
  uint32_t mfn = 0, bytes = 0;
  if (!GetInfo(xch, mfn, bytes)) return -1;
  if (mfn == 0) return Fail(EINVAL);
  const size_t pages = (bytes + kPage - 1) / kPage;
  void* t_info = MapRange(xch, DOMID_XEN, pages, PROT_READ, mfn);
  if (t_info == nullptr) return -1;
  uint16_t tbuf_size = 0;
  std::memcpy(&tbuf_size, t_info, sizeof tbuf_size);
  ::munmap(t_info, pages * kPage);
  if (tbuf_size == 0) return Fail(EINVAL);
  *size = tbuf_size;
  return 0;
}

int xc_tbuf_set_cpu_mask(xc_interface* xch, xc_cpumap_t mask) {
  const auto bytes = static_cast<size_t>(xc_get_cpumap_size(xch));
  SimReply reply;
  if (!xch->conn.Call(SimOp::kTbufSetCpuMask, 0, 0, {mask, bytes}, reply)) return -1;
  return reply.rc < 0 ? Fail(-reply.rc) : 0;
}

int xc_tbuf_set_evt_mask(xc_interface* xch, uint32_t mask) {
  return Control(xch, SimOp::kTbufSetEvtMask, mask);
}

void* xc_map_foreign_range(xc_interface* xch, uint32_t dom, int size, int prot, unsigned long mfn) {
  if (size <= 0) {
    errno = EINVAL;
    return nullptr;
  }
  return MapRange(xch, dom, (static_cast<size_t>(size) + kPage - 1) / kPage, prot, mfn);
}

void* xc_map_foreign_pages(xc_interface* xch, uint32_t dom, int prot, const xen_pfn_t* arr,
                           int num) {
  if (dom != DOMID_XEN || num <= 0) {
    errno = dom != DOMID_XEN ? EPERM : EINVAL;
    return nullptr;
  }
  std::vector<uint64_t> frames(arr, arr + num);
  return xch->conn.MapFrames(frames.data(), frames.size(), prot, nullptr);
}

// Only the trace-buffer sysctl exists here (dom0 tools read buffer_mfn/size/evt_mask with it).
int xc_sysctl(xc_interface* xch, struct xen_sysctl* sysctl) {
  if (sysctl->cmd != XEN_SYSCTL_tbuf_op) return Fail(ENOSYS);
  xen_sysctl_tbuf_op& op = sysctl->u.tbuf_op;
  switch (op.cmd) {
    case XEN_SYSCTL_TBUFOP_get_info: {
      SimReply reply;
      if (!xch->conn.Call(SimOp::kTbufGetInfo, 0, 0, {}, reply)) return -1;
      op.evt_mask = reply.values[0];
      op.buffer_mfn = reply.values[1];
      op.size = reply.values[2];
      return 0;
    }
    case XEN_SYSCTL_TBUFOP_set_evt_mask:
      return Control(xch, SimOp::kTbufSetEvtMask, op.evt_mask);
    case XEN_SYSCTL_TBUFOP_set_size:
      return Control(xch, SimOp::kTbufSetSize, op.size);
    case XEN_SYSCTL_TBUFOP_enable:
      return Control(xch, SimOp::kTbufEnable);
    case XEN_SYSCTL_TBUFOP_disable:
      return Control(xch, SimOp::kTbufDisable);
    default:  // set_cpu_mask needs a guest handle: use xc_tbuf_set_cpu_mask
      return Fail(ENOSYS);
  }
}

int xc_domain_getinfolist(xc_interface* xch, uint32_t first_domain, unsigned int max_domains,
                          xc_domaininfo_t* info) {
  std::vector<SimDomainEntry> entries(max_domains);
  SimReply reply;
  if (!xch->conn.Call(SimOp::kDomainList, first_domain, max_domains, {}, reply,
                      std::as_writable_bytes(std::span(entries))))
    return -1;
  const uint32_t count = std::min<uint32_t>(reply.values[0], max_domains);
  for (uint32_t i = 0; i < count; ++i) {
    const SimDomainEntry& e = entries[i];
    xc_domaininfo_t& d = info[i];
    std::memset(&d, 0, sizeof d);
    d.domain = static_cast<domid_t>(e.domid);
    d.flags = (e.running_vcpus > 0 ? XEN_DOMINF_running : 0) | (e.blocked ? XEN_DOMINF_blocked : 0);
    d.cpu_time = e.cpu_time_ns;
    d.nr_online_vcpus = e.vcpus;
    d.max_vcpu_id = e.vcpus > 0 ? e.vcpus - 1 : 0;
    d.tot_pages = d.max_pages = 32768;
    static_assert(sizeof d.handle >= sizeof e.instance);
    std::memcpy(d.handle, &e.instance, sizeof e.instance);
  }
  return static_cast<int>(count);
}

// Only cpu_time and online are meaningful: the simulator keeps no vCPU-to-CPU placement here.
int xc_vcpu_getinfo(xc_interface* xch, uint32_t domid, uint32_t vcpu, xc_vcpuinfo_t* info) {
  SimReply reply;
  if (!xch->conn.Call(SimOp::kVcpuInfo, domid, vcpu, {}, reply)) return -1;
  if (reply.rc < 0) return Fail(-reply.rc);
  std::memset(info, 0, sizeof *info);
  info->vcpu = vcpu;
  info->online = 1;
  info->cpu_time = uint64_t{reply.values[0]} | uint64_t{reply.values[1]} << 32;
  return 0;
}

}  // extern "C"
