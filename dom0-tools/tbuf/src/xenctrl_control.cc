// Built with -std=gnu++20: Xen 4.17's public headers use GNU extensions and have no extern "C"
// guards of their own. Only this file sees them.
#include "tbuf/xenctrl_control.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>

extern "C" {
#include <xenctrl.h>
#include <xenforeignmemory.h>
}

#include "xenbaked/t_info.h"

namespace xenbake::tbuf {
namespace {

using tracefmt::ErrorCode;
using tracefmt::MakeError;
using tracefmt::MakeSystemError;

constexpr size_t kPageBytes = 4096;

// Whether xc_sysctl comes from the same library as xc_interface_open. A stand-in for libxenctrl
// (the simulator's shim, preloaded) provides only the calls it implements; the real xc_sysctl
// would then be handed a handle it does not know. In that case the event mask and the CPUs with
// buffers are reported unknown rather than asked for.
bool SysctlMatchesInterface() {
  Dl_info open_info{};
  Dl_info sysctl_info{};
  void* open_fn = dlsym(RTLD_DEFAULT, "xc_interface_open");
  void* sysctl_fn = dlsym(RTLD_DEFAULT, "xc_sysctl");
  if (open_fn == nullptr || sysctl_fn == nullptr) return false;
  if (dladdr(open_fn, &open_info) == 0 || dladdr(sysctl_fn, &sysctl_info) == 0) return false;
  return open_info.dli_fbase == sysctl_info.dli_fbase;
}

// What XEN_SYSCTL_TBUFOP_get_info returns.
struct TbufInfo {
  uint32_t event_mask = 0;
  uint64_t t_info_mfn = 0;
  uint64_t t_info_bytes = 0;
};

class XenctrlTraceBufferControl final : public TraceBufferControl {
 public:
  XenctrlTraceBufferControl(xc_interface* xch, xenforeignmemory_handle* fmem)
      : xch_(xch), fmem_(fmem) {}
  ~XenctrlTraceBufferControl() override {
    if (fmem_ != nullptr) xenforeignmemory_close(fmem_);
    xc_interface_close(xch_);
  }

  tracefmt::Result<TraceBufferState> Query() override;
  tracefmt::Status SetPagesPerCpu(uint32_t pages) override;
  tracefmt::Status SetEventMask(uint32_t mask) override;
  tracefmt::Status SetCpuMask(const std::vector<uint32_t>& cpus) override;
  tracefmt::Status Enable(uint32_t pages) override;
  tracefmt::Status Disable() override;

 private:
  tracefmt::Result<HostCpus> PhysInfo();
  std::optional<TbufInfo> GetInfo();
  void ReadTInfo(const TbufInfo& info, TraceBufferState& state);

  xc_interface* xch_;
  xenforeignmemory_handle* fmem_;  // null when it could not be opened: CPUs then unknown
};

tracefmt::Result<HostCpus> XenctrlTraceBufferControl::PhysInfo() {
  xc_physinfo_t info;
  std::memset(&info, 0, sizeof info);
  if (xc_physinfo(xch_, &info) != 0) return MakeSystemError("xc_physinfo failed");
  return HostCpus{.nr_cpus = info.nr_cpus, .max_cpu_id = info.max_cpu_id, .cpu_khz = info.cpu_khz};
}

std::optional<TbufInfo> XenctrlTraceBufferControl::GetInfo() {
  if (!SysctlMatchesInterface()) return std::nullopt;
  struct xen_sysctl sysctl;
  std::memset(&sysctl, 0, sizeof sysctl);
  sysctl.cmd = XEN_SYSCTL_tbuf_op;
  sysctl.interface_version = XEN_SYSCTL_INTERFACE_VERSION;
  sysctl.u.tbuf_op.cmd = XEN_SYSCTL_TBUFOP_get_info;
  if (xc_sysctl(xch_, &sysctl) != 0) return std::nullopt;
  return TbufInfo{.event_mask = sysctl.u.tbuf_op.evt_mask,
                  .t_info_mfn = sysctl.u.tbuf_op.buffer_mfn,
                  .t_info_bytes = sysctl.u.tbuf_op.size};
}

// Maps t_info read-only to learn the real size per CPU and which CPUs have buffers.
void XenctrlTraceBufferControl::ReadTInfo(const TbufInfo& info, TraceBufferState& state) {
  if (fmem_ == nullptr || info.t_info_mfn == 0 || info.t_info_bytes == 0) return;
  std::vector<xen_pfn_t> frames(xenbaked::TInfoPages(info.t_info_bytes));
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = info.t_info_mfn + i;
  void* addr =
      xenforeignmemory_map(fmem_, DOMID_XEN, PROT_READ, frames.size(), frames.data(), nullptr);
  if (addr == nullptr) return;
  const std::span<const std::byte> t_info_untrusted(static_cast<const std::byte*>(addr),
                                                    frames.size() * kPageBytes);
  tracefmt::Result<xenbaked::TInfoLayout> layout =
      xenbaked::ParseTInfo(t_info_untrusted, state.host.max_cpu_id + 1);
  if (layout && layout->pages_per_cpu != 0) {
    state.pages_per_cpu = layout->pages_per_cpu;
    std::vector<uint32_t> cpus;
    for (const xenbaked::CpuFrames& c : layout->cpus) cpus.push_back(c.cpu);
    state.cpus_with_buffers = std::move(cpus);
  }
  xenforeignmemory_unmap(fmem_, addr, frames.size());
}

tracefmt::Result<TraceBufferState> XenctrlTraceBufferControl::Query() {
  TraceBufferState state;
  tracefmt::Result<HostCpus> host = PhysInfo();
  if (!host) return host.error();
  state.host = *host;
  if (const std::optional<TbufInfo> info = GetInfo()) {
    state.event_mask = info->event_mask;
    state.t_info_bytes = info->t_info_bytes;
    ReadTInfo(*info, state);
  }
  if (!state.pages_per_cpu) {
    // Despite its comment, xc_tbuf_get_size reports t_info->tbuf_size: pages per CPU. It fails
    // when no buffers have been allocated.
    unsigned long pages = 0;
    if (xc_tbuf_get_size(xch_, &pages) == 0 && pages != 0) {
      state.pages_per_cpu = static_cast<uint32_t>(pages);
    }
  }
  return state;
}

tracefmt::Status XenctrlTraceBufferControl::SetPagesPerCpu(uint32_t pages) {
  if (xc_tbuf_set_size(xch_, pages) == 0) return {};
  tracefmt::Error e = MakeSystemError(fmt::format("xc_tbuf_set_size({}) refused", pages));
  if (e.sys_errno == EINVAL) {
    e.message +=
        ": Xen sets the size once per boot (tbuf_size= on its command line, or an "
        "earlier set or enable, wins)";
  }
  return e;
}

tracefmt::Status XenctrlTraceBufferControl::SetEventMask(uint32_t mask) {
  if (xc_tbuf_set_evt_mask(xch_, mask) != 0) return MakeSystemError("xc_tbuf_set_evt_mask failed");
  return {};
}

tracefmt::Status XenctrlTraceBufferControl::SetCpuMask(const std::vector<uint32_t>& cpus) {
  const int max_cpus = xc_get_max_cpus(xch_);
  if (max_cpus <= 0) return MakeSystemError("xc_get_max_cpus failed");
  for (uint32_t cpu : cpus) {
    if (cpu >= static_cast<uint32_t>(max_cpus)) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("CPU {} does not exist (this host has CPU ids below {})", cpu, max_cpus));
    }
  }
  xc_cpumap_t map = xc_cpumap_alloc(xch_);
  if (map == nullptr) return MakeSystemError("xc_cpumap_alloc failed");
  for (uint32_t cpu : cpus) xc_cpumap_setcpu(static_cast<int>(cpu), map);
  const int rc = xc_tbuf_set_cpu_mask(xch_, map);
  std::free(map);
  if (rc != 0) return MakeSystemError("xc_tbuf_set_cpu_mask failed");
  return {};
}

tracefmt::Status XenctrlTraceBufferControl::Enable(uint32_t pages) {
  // `size` is the t_info area in bytes, not the per-CPU size: Query() reports that.
  unsigned long t_info_mfn = 0;
  unsigned long t_info_bytes = 0;
  if (xc_tbuf_enable(xch_, pages, &t_info_mfn, &t_info_bytes) != 0) {
    return MakeSystemError("xc_tbuf_enable failed (out of memory in Xen, or no buffers)");
  }
  return {};
}

tracefmt::Status XenctrlTraceBufferControl::Disable() {
  if (xc_tbuf_disable(xch_) != 0) return MakeSystemError("xc_tbuf_disable failed");
  return {};
}

}  // namespace

bool XenReachable() {
  std::error_code ec;
  if (std::filesystem::exists("/dev/xen/privcmd", ec) ||
      std::filesystem::exists("/proc/xen/privcmd", ec)) {
    return true;
  }
  if (std::getenv("XENBAKE_SIM") != nullptr) return true;  // the shim's memory file
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, "xenbake-shim") != nullptr;
}

tracefmt::Result<std::unique_ptr<TraceBufferControl>> OpenXenctrlTraceBufferControl() {
  if (!XenReachable()) {
    return MakeError(ErrorCode::kNotFound,
                     "not running on Xen: /dev/xen/privcmd does not exist (run this in dom0, or "
                     "against xenbake-sim with LD_PRELOAD=libxenbake-shim.so)");
  }
  xc_interface* xch = xc_interface_open(nullptr, nullptr, 0);
  if (xch == nullptr) {
    return MakeSystemError("cannot open libxenctrl (xc_interface_open): is this dom0, as root?");
  }
  xenforeignmemory_handle* fmem = xenforeignmemory_open(nullptr, 0);
  return std::unique_ptr<TraceBufferControl>(new XenctrlTraceBufferControl(xch, fmem));
}

}  // namespace xenbake::tbuf
