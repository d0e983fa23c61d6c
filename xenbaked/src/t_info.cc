#include "xenbaked/t_info.h"

#include <fmt/format.h>

#include <cstring>

namespace xenbaked {
namespace {
uint16_t Load16(std::span<const std::byte> bytes, size_t offset) {
  uint16_t v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}
uint32_t Load32(std::span<const std::byte> bytes, size_t offset) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}
}  // namespace

tracefmt::Result<TInfoLayout> ParseTInfo(std::span<const std::byte> t_info, uint32_t nr_cpu_ids) {
  using tracefmt::ErrorCode;
  using tracefmt::MakeError;
  const size_t header_bytes = 2 + 2 * size_t{nr_cpu_ids};
  if (t_info.size() < header_bytes)
    return MakeError(ErrorCode::kTruncated,
                     fmt::format("t_info is {} bytes, its header for {} CPU ids needs {}",
                                 t_info.size(), nr_cpu_ids, header_bytes));
  TInfoLayout layout;
  layout.pages_per_cpu = Load16(t_info, 0);
  if (layout.pages_per_cpu == 0)
    return MakeError(ErrorCode::kNotFound, "t_info says 0 pages per CPU: no trace buffers");
  for (uint32_t cpu = 0; cpu < nr_cpu_ids; ++cpu) {
    const uint32_t offset_untrusted = Load16(t_info, 2 + 2 * size_t{cpu});
    if (offset_untrusted == 0) continue;  // no buffer for this CPU
    const size_t first = size_t{offset_untrusted} * 4;
    const size_t bytes = size_t{layout.pages_per_cpu} * 4;
    if (first < header_bytes || first + bytes > t_info.size())
      return MakeError(ErrorCode::kCorrupt,
                       fmt::format("t_info: cpu {} frame list at u32 {} ({} frames) lies outside "
                                   "the {} mapped bytes",
                                   cpu, offset_untrusted, layout.pages_per_cpu, t_info.size()),
                       2 + 2 * uint64_t{cpu});
    CpuFrames c{.cpu = cpu, .frames = {}};
    c.frames.reserve(layout.pages_per_cpu);
    for (uint32_t i = 0; i < layout.pages_per_cpu; ++i)
      c.frames.push_back(Load32(t_info, first + 4 * size_t{i}));
    layout.cpus.push_back(std::move(c));
  }
  if (layout.cpus.empty())
    return MakeError(ErrorCode::kNotFound, "t_info lists no CPU with a trace buffer");
  return layout;
}

bool FramesContiguous(std::span<const uint32_t> frames) {
  for (size_t i = 1; i < frames.size(); ++i)
    if (frames[i] != frames[0] + i) return false;
  return true;
}

}  // namespace xenbaked
