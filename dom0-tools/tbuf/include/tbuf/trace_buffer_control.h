// tbuf/trace_buffer_control.h — Xen's trace-buffer controls behind one narrow interface.
//
// The controls are libxenctrl's xc_tbuf_* calls and xc_physinfo. XenctlTraceBufferControl
// (tbuf/xenctrl_control.h) is the real one, which runs on Xen and, with the simulator's libxen
// shim preloaded, against xenbake-sim; tests use a fake. Nothing here includes Xen's headers.
//
//   auto control = OpenXenctrlTraceBufferControl();
//   if (!control) die(control.error().Describe());
//   tracefmt::Result<TraceBufferState> state = (*control)->Query();
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tracefmt/result.h"

namespace xenbake::tbuf {

struct HostCpus {
  uint32_t nr_cpus = 0;     // online
  uint32_t max_cpu_id = 0;  // ids may be sparse
  uint64_t cpu_khz = 0;
};

// What can be learnt without changing anything. Xen reports neither whether tracing is enabled
// nor the CPU mask; the event mask and which CPUs have buffers come from XEN_SYSCTL_tbuf_op's
// get_info and the t_info area, and are absent when those cannot be read.
struct TraceBufferState {
  HostCpus host;
  std::optional<uint32_t> pages_per_cpu;  // t_info->tbuf_size; nullopt: buffers not allocated
  std::optional<uint32_t> event_mask;
  std::optional<std::vector<uint32_t>> cpus_with_buffers;
  uint64_t t_info_bytes = 0;  // the t_info area (what xc_tbuf_enable reports as "size")
};

class TraceBufferControl {
 public:
  virtual ~TraceBufferControl() = default;
  virtual tracefmt::Result<TraceBufferState> Query() = 0;
  // One-shot per boot in Xen: refused once buffers exist (tbuf_size= on Xen's command line, or an
  // earlier set or enable).
  virtual tracefmt::Status SetPagesPerCpu(uint32_t pages) = 0;
  virtual tracefmt::Status SetEventMask(uint32_t mask) = 0;
  // CPU ids to trace; the others' records are not produced.
  virtual tracefmt::Status SetCpuMask(const std::vector<uint32_t>& cpus) = 0;
  // Allocates buffers of `pages` per CPU if none exist yet, then turns tracing on.
  virtual tracefmt::Status Enable(uint32_t pages) = 0;
  virtual tracefmt::Status Disable() = 0;
};

}  // namespace xenbake::tbuf
