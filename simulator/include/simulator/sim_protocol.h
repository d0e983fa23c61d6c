// simulator/sim_protocol.h — how the libxen shim talks to a running xenbake-sim.
//
// The trace memory is a file (XENBAKE_SIM=/dev/shm/xenbake-sim): the shim maps its pages as a dom0
// tool maps Xen's frames (page index = "MFN"). Control goes over a Unix stream socket at
// "<file>.sock": each request is a fixed header and an optional payload; each gets a fixed reply
// and an optional payload, except kUnmask, which is one-way. A connection that sent kBindVirq is
// an event channel from then on: the simulator writes one byte per VIRQ_TBUF, and, as an event
// channel does, raises no other until the port is unmasked. Only one binding may exist at a time
// (a domain binds a global VIRQ once): a second gets -EEXIST.
//
// This is our own wire format between our own programs; it carries nothing of Xen's ABI.
#pragma once

#include <cstdint>
#include <string>

namespace simulator {

inline constexpr uint32_t kSimProtocolMagic = 0x5842534d;  // "MSBX"
inline constexpr uint32_t kSimVirqPort = 7;                // the port VIRQ_TBUF is bound to
inline constexpr char kSimEventByte = 'E';
inline constexpr uint32_t kSimDomainNameBytes = 64;

enum class SimOp : uint32_t {
  kHello = 1,    // -> values: nr_cpus, max_cpu_id, cpu_khz lo, cpu_khz hi
  kTbufGetInfo,  // -> values: evt_mask, t_info first page ("mfn"), t_info bytes
  kTbufSetSize,  // arg: pages
  kTbufEnable,
  kTbufDisable,
  kTbufSetEvtMask,  // arg: mask
  kTbufSetCpuMask,  // payload: xc_cpumap_t bytes
  kDomainList,      // arg: first domid, arg2: max -> values[0]: count; payload: SimDomainEntry[]
  kBindVirq,        // -> values[0]: port; the connection becomes an event channel
  kUnmask,          // one-way, on an event channel
  kCpuOnlineMap,    // -> values[0]: online CPUs; payload: bitmap, bit n = CPU n online
  kVcpuInfo,        // arg: domid, arg2: vCPU -> values: cpu_time ns lo, hi; rc -ESRCH: none
};

struct SimRequest {
  uint32_t magic = kSimProtocolMagic;
  SimOp op = SimOp::kHello;
  uint32_t arg = 0;
  uint32_t arg2 = 0;
  uint32_t payload_bytes = 0;
};

struct SimReply {
  int32_t rc = 0;  // 0, or -errno
  uint32_t values[4] = {};
  uint32_t payload_bytes = 0;
};

struct SimDomainEntry {
  uint32_t domid = 0;
  uint32_t vcpus = 0;
  uint32_t running_vcpus = 0;
  uint32_t blocked = 0;  // 1 when every vCPU is blocked
  uint64_t cpu_time_ns = 0;
  uint64_t instance = 0;  // changes when the id is reused: the shim puts it in the handle
  char name[kSimDomainNameBytes] = {};
};

inline std::string SimSocketPath(const std::string& shm_path) {
  return shm_path + ".sock";
}

}  // namespace simulator
