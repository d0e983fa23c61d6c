// xenbaked/hypervisor.h — the one narrow interface between the daemon and the hypervisor.
//
// Everything the daemon needs from Xen goes through `Hypervisor`: physinfo, enabling tracing and
// mapping every CPU's trace buffer, the event-channel fd that VIRQ_TBUF makes readable and its
// acknowledgement, disabling tracing, the domain list, one domain's name, and each vCPU's running
// time as the hypervisor counts it (for reconciliation). Implementations:
//
//   XenHypervisor        libxenctrl + libxenforeignmemory + libxenevtchn + libxenstore
//                        (xenbaked/xen_hypervisor.h); runs unchanged on real Xen and under the
//                        simulator's libxen shim (LD_PRELOAD=libxenbake-shim.so)
//   SimulatedHypervisor  an in-process simulator::SimulatedHost (`xenbaked --simulate`, and the
//                        embedded default when no hypervisor is present)
//   test doubles         tests/unit/xenbaked
//
// A mapped buffer is only bytes: `CpuRing` reads `prod` with acquire and publishes `cons` with
// release through std::atomic_ref on the two header words, and hands out the data area as a span
// for tracefmt::DrainRing. No struct is overlaid on hypervisor memory, and nothing read from it is
// trusted (DrainRing checks the pointers).
//
//   std::unique_ptr<Hypervisor> hv = ...;                    // injected by the caller
//   Result<PhysInfo> info = hv->GetPhysInfo();
//   Result<TraceBuffers> bufs = hv->EnableTracing({.pages_per_cpu = 32});
//   Result<std::vector<uint32_t>> online = hv->OnlineCpus();  // any without a ring is untraced
//   for (CpuRing& ring : bufs->rings) {
//     uint32_t prod = ring.LoadProd();                       // acquire
//     RingDrain d = DrainRing(ring.Data(), ring.LoadCons(), prod, budget, on_run, on_record);
//     ring.StoreCons(d.new_cons);                            // release
//   }
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracefmt/result.h"
#include "tracefmt/ring.h"

namespace xenbaked {

// xc_physinfo's answer, the part a trace consumer needs.
struct PhysInfo {
  uint32_t nr_cpus = 0;     // online CPUs
  uint32_t max_cpu_id = 0;  // CPU ids may be sparse: size per-CPU arrays by max_cpu_id + 1
  uint64_t cpu_khz = 0;     // TSC frequency: trace TSC to ns
};

// One CPU's mapped trace buffer (u32 cons, u32 prod, then the data area), as raw bytes. Cheap to
// copy; the memory belongs to the Hypervisor that returned it and lives until it is destroyed or
// tracing is disabled and the buffers unmapped.
class CpuRing {
 public:
  CpuRing() = default;
  // `buffer` is the whole per-CPU buffer (pages * 4096 bytes), 4-byte aligned.
  CpuRing(uint32_t cpu, std::span<std::byte> buffer) : cpu_(cpu), buffer_(buffer) {}

  uint32_t cpu() const { return cpu_; }
  bool empty() const { return buffer_.size() <= tracefmt::kTbufHeaderBytes; }
  std::span<std::byte> buffer() const { return buffer_; }
  // The data area after the header: what tracefmt::DrainRing reads.
  std::span<const std::byte> Data() const { return buffer_.subspan(tracefmt::kTbufHeaderBytes); }
  uint32_t data_size() const {
    return static_cast<uint32_t>(buffer_.size() - tracefmt::kTbufHeaderBytes);
  }

  // prod is written by the producer; acquire so the records before it are visible. Untrusted.
  uint32_t LoadProd() const { return Word(1).load(std::memory_order_acquire); }
  // cons is ours, but another process could have written it: untrusted too.
  uint32_t LoadCons() const { return Word(0).load(std::memory_order_acquire); }
  // Release: our reads of the data area happen before the producer may overwrite it.
  void StoreCons(uint32_t cons) const { Word(0).store(cons, std::memory_order_release); }

 private:
  std::atomic_ref<uint32_t> Word(size_t index) const {
    // The buffer starts on a page boundary, so both header words are aligned u32s.
    return std::atomic_ref<uint32_t>(reinterpret_cast<uint32_t*>(buffer_.data())[index]);
  }

  uint32_t cpu_ = 0;
  std::span<std::byte> buffer_;
};

// What to ask the hypervisor for.
struct TraceSetup {
  uint32_t pages_per_cpu = 32;     // xc_tbuf_enable's size; ignored by Xen once a size is set
  uint32_t event_mask = 0;         // 0: leave the hypervisor's mask as it is
  std::vector<uint32_t> cpu_mask;  // CPU ids to trace; empty: leave as it is (all)
};

// The mapped buffers, one ring per CPU that has a buffer, by ascending CPU id. CPUs without a
// buffer (mfn_offset 0: offline when tracing was enabled, or sparse ids) have no entry.
struct TraceBuffers {
  uint32_t pages_per_cpu = 0;  // t_info->tbuf_size: the real size, whatever was asked
  std::vector<CpuRing> rings;
};

struct DomainInfo {
  uint32_t domid = 0;
  std::string name;  // from xenstore; empty when it has none. Untrusted text.
  uint32_t max_vcpu_id = 0;
  bool dying = false;
  bool shutdown = false;
};

// One vCPU's running time as the hypervisor keeps it (Xen: xc_vcpu_getinfo's cpu_time, what
// `xl vcpu-list` prints): an oracle independent of the trace, for reconciliation.
struct VcpuCpuTime {
  uint32_t domid = 0;
  uint32_t vcpu = 0;
  // Changes when a domain id is reused by a new domain (Xen: a hash of the domain handle), so a
  // reader can tell a fresh counter from one that went on. 0 when unknown.
  uint64_t instance = 0;
  uint64_t cpu_time_ns = 0;  // since the vCPU was created; resets with a new domain
};

struct VcpuCpuTimes {
  std::vector<VcpuCpuTime> vcpus;  // by domid, then vCPU; offline vCPUs are left out
  // The trace clock (TSC) when the last cpu_time was read, to compare it with the trace's
  // frontier; 0 when the implementation cannot tell.
  uint64_t read_tsc = 0;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  // "xen", "simulated", ...: for logs and health.
  virtual std::string_view name() const = 0;

  virtual tracefmt::Result<PhysInfo> GetPhysInfo() = 0;

  // Sets the masks, enables tracing at the given size (one-shot in Xen), maps t_info and every
  // CPU's buffer read-write, and binds the trace interrupt (VIRQ_TBUF). Call once.
  virtual tracefmt::Result<TraceBuffers> EnableTracing(const TraceSetup& setup) = 0;

  // The fd that becomes readable when the interrupt is pending; -1 before EnableTracing. Owned by
  // the Hypervisor: a waiter should dup() it (asio closes descriptors it owns).
  virtual int EventFd() const = 0;

  // After the fd became readable: consume the pending notification and unmask the channel so the
  // next 50% crossing notifies again. Never blocks (returns Ok when nothing was pending).
  virtual tracefmt::Status AckEvent() = 0;

  // Stops the producer. The mappings stay valid so a final drain can read what is left.
  virtual tracefmt::Status DisableTracing() = 0;

  // The trace masks are global to the host and outlive the consumer that set them (the next
  // `xentrace` without -e inherits the event mask): a consumer reads what it found before it
  // changes them and gives that back when it exits.
  // The event mask in force now (Xen: XEN_SYSCTL_TBUFOP_get_info; libxenctrl has no getter).
  virtual tracefmt::Result<uint32_t> GetEventMask() = 0;
  virtual tracefmt::Status SetEventMask(uint32_t mask) = 0;
  // Traces only the CPUs listed; empty: every CPU. Xen offers no way to read this mask back, so
  // what a consumer restores is Xen's own default, every CPU.
  virtual tracefmt::Status SetCpuMask(const std::vector<uint32_t>& cpus) = 0;

  // Domains that exist now, with names (xc_domain_getinfolist + /local/domain/<id>/name).
  virtual tracefmt::Result<std::vector<DomainInfo>> ListDomains() = 0;

  // One domain's name (/local/domain/<id>/name): one xenstore read, for a domain the daemon has
  // not named yet. kNotFound while the toolstack has not written it (it does so some time after
  // the domain exists) or the domain is gone; kUnsupported without xenstore. Untrusted text.
  virtual tracefmt::Result<std::string> DomainName(uint32_t domid) = 0;

  // The physical CPUs online now, ascending. Xen allocates trace buffers once, for the CPUs
  // online at that moment, and drops the records of a CPU that came online later without
  // counting them: comparing this list with the mapped rings is how the daemon makes that loss
  // visible.
  virtual tracefmt::Result<std::vector<uint32_t>> OnlineCpus() = 0;

  // Every online vCPU's running time as the hypervisor counts it: one domain listing and one
  // query per vCPU (Xen: XEN_DOMCTL_getvcpuinfo). kUnsupported when the implementation has no
  // such clock (the default): the daemon then does not reconcile.
  virtual tracefmt::Result<VcpuCpuTimes> ReadVcpuCpuTimes() {
    return tracefmt::MakeError(tracefmt::ErrorCode::kUnsupported, "no per-vCPU cpu_time");
  }
};

}  // namespace xenbaked
