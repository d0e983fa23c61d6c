// xenbaked/t_info.h — reading Xen's t_info area: which CPUs have a trace buffer and where its
// pages are. Pure functions over bytes, shared by every backend and tested without a hypervisor.
//
// Layout (xen/common/trace.c, alloc_trace_bufs): u16 tbuf_size (pages per CPU), u16
// mfn_offset[NR_CPUS]; for a CPU with a buffer, mfn_offset[cpu] is the index, in u32 units from
// the start of t_info, of its list of tbuf_size u32 page frame numbers; 0 means no buffer. The
// area is untrusted: every offset and length is checked against the bytes actually mapped.
//
//   Result<TInfoLayout> layout = ParseTInfo(t_info_bytes, /*nr_cpu_ids=*/max_cpu_id + 1);
//   for (const CpuFrames& c : layout->cpus) map(c.frames);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tracefmt/result.h"

namespace xenbaked {

struct CpuFrames {
  uint32_t cpu = 0;
  std::vector<uint32_t> frames;  // tbuf_size page frame numbers, in buffer order
};

struct TInfoLayout {
  uint32_t pages_per_cpu = 0;
  std::vector<CpuFrames> cpus;  // CPUs with a buffer, ascending id
};

// Bytes of t_info to map for `t_info_bytes` as xc_tbuf_enable reports it, rounded up to pages.
constexpr uint32_t TInfoPages(uint64_t t_info_bytes) {
  return static_cast<uint32_t>((t_info_bytes + 4095) / 4096);
}

// `nr_cpu_ids` = max_cpu_id + 1 (CPU ids can be sparse; offline CPUs have offset 0).
tracefmt::Result<TInfoLayout> ParseTInfo(std::span<const std::byte> t_info, uint32_t nr_cpu_ids);

// Whether `frames` are consecutive (first, first+1, ...): then one contiguous range maps them.
bool FramesContiguous(std::span<const uint32_t> frames);

}  // namespace xenbaked
