#include "simulator/trace_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "tracefmt/record.h"
#include "tracefmt/ring.h"

namespace simulator {
namespace {

using tracefmt::ErrorCode;
using tracefmt::MakeError;
using tracefmt::MakeSystemError;

constexpr uint32_t kPage = tracefmt::kXenPageSize;

uint32_t DivRoundUp(uint32_t a, uint32_t b) {
  return (a + b - 1) / b;
}

}  // namespace

tracefmt::Result<TraceLayout> ComputeTraceLayout(uint32_t requested_pages,
                                                 const std::vector<bool>& online,
                                                 uint32_t nr_cpus_limit) {
  if (requested_pages == 0) return MakeError(ErrorCode::kInvalidArgument, "zero pages per CPU");
  const uint32_t nr_cpu_ids = static_cast<uint32_t>(online.size());
  if (nr_cpu_ids == 0 || nr_cpu_ids > nr_cpus_limit)
    return MakeError(ErrorCode::kInvalidArgument, "CPU ids exceed NR_CPUS");
  TraceLayout out;
  // offsetof(struct t_info, mfn_offset[NR_CPUS]) in u32 units, rounded up.
  out.t_info_first_offset = DivRoundUp(2u + 2u * nr_cpus_limit, 4u);
  // Xen's clamp: tbuf_size is u16, prod must reach 2*data_size in a u32, and the highest CPU's
  // page list must start at an offset a u16 can hold.
  uint32_t max_pages = std::min<uint32_t>(0xffffu, 0xffffffffu / kPage);
  uint32_t max_mfn_offset = 0xffffu - out.t_info_first_offset;
  if (nr_cpu_ids > 1) max_mfn_offset /= (nr_cpu_ids - 1);
  max_pages = std::min(max_pages, max_mfn_offset);
  out.pages_per_cpu = std::min(requested_pages, max_pages);
  const uint32_t t_info_words = nr_cpu_ids * out.pages_per_cpu + out.t_info_first_offset;
  out.t_info_pages = DivRoundUp(t_info_words * 4u, kPage);
  out.cpu_first_page.assign(nr_cpu_ids, 0);
  uint32_t next_page = kTInfoFirstPage + out.t_info_pages;
  for (uint32_t cpu = 0; cpu < nr_cpu_ids; ++cpu) {
    if (!online[cpu]) continue;
    out.cpu_first_page[cpu] = next_page;
    next_page += out.pages_per_cpu;
  }
  out.total_pages = next_page;
  return out;
}

tracefmt::Result<TraceMemory> TraceMemory::Create(Options options) {
  if (options.cpu_ids.empty()) return MakeError(ErrorCode::kInvalidArgument, "no CPUs");
  uint32_t max_id = *std::max_element(options.cpu_ids.begin(), options.cpu_ids.end());
  max_id = std::max(max_id, options.max_cpu_id);
  if (max_id >= options.nr_cpus_limit)
    return MakeError(ErrorCode::kInvalidArgument, "a CPU id is not below NR_CPUS");
  TraceMemory mem;
  mem.online_.assign(max_id + 1, false);
  for (uint32_t id : options.cpu_ids) mem.online_[id] = true;
  mem.options_ = std::move(options);
  if (!mem.options_.shm_path.empty()) {
    mem.fd_ = ::open(mem.options_.shm_path.c_str(),
                     O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (mem.fd_ < 0) return MakeSystemError("create " + mem.options_.shm_path);
  }
  if (auto st = mem.MapFile(kPage); !st) return st.error();
  tracefmt::Store64(mem.base_, kTraceMemoryMagic);
  tracefmt::Store32(mem.base_ + 8, kTraceMemoryVersion);
  return mem;
}

TraceMemory::TraceMemory(TraceMemory&& other) noexcept {
  *this = std::move(other);
}

TraceMemory& TraceMemory::operator=(TraceMemory&& other) noexcept {
  if (this == &other) return *this;
  Unmap();
  if (fd_ >= 0) ::close(fd_);
  options_ = std::move(other.options_);
  online_ = std::move(other.online_);
  layout_ = std::move(other.layout_);
  base_ = std::exchange(other.base_, nullptr);
  mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
  fd_ = std::exchange(other.fd_, -1);
  return *this;
}

TraceMemory::~TraceMemory() {
  Unmap();
  if (fd_ >= 0) ::close(fd_);
}

void TraceMemory::Unmap() {
  if (base_ != nullptr) ::munmap(base_, mapped_bytes_);
  base_ = nullptr;
  mapped_bytes_ = 0;
}

tracefmt::Status TraceMemory::MapFile(size_t bytes) {
  void* p = nullptr;
  if (fd_ >= 0) {
    if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) return MakeSystemError("ftruncate");
    p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  } else {
    p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  if (p == MAP_FAILED) return MakeSystemError("mmap trace memory");
  // The header page is copied over when the mapping grows (private memory does not share it).
  if (base_ != nullptr && fd_ < 0) std::memcpy(p, base_, std::min(bytes, mapped_bytes_));
  Unmap();
  base_ = static_cast<std::byte*>(p);
  mapped_bytes_ = bytes;
  return {};
}

tracefmt::Status TraceMemory::Allocate(uint32_t pages) {
  if (allocated()) return MakeError(ErrorCode::kInvalidArgument, "trace buffers already allocated");
  auto layout = ComputeTraceLayout(pages, online_, options_.nr_cpus_limit);
  if (!layout) return layout.error();
  if (auto st = MapFile(size_t{layout->total_pages} * kPage); !st) return st;
  std::byte* t_info = base_ + size_t{kTInfoFirstPage} * kPage;
  std::memset(t_info, 0, size_t{layout->t_info_pages} * kPage);
  // u16 tbuf_size, u16 mfn_offset[]: written as halves of little-endian u32 words.
  auto store16 = [&](uint32_t index, uint16_t value) {
    std::memcpy(t_info + 2 * index, &value, 2);
  };
  store16(0, static_cast<uint16_t>(layout->pages_per_cpu));
  for (uint32_t cpu = 0; cpu < layout->cpu_first_page.size(); ++cpu) {
    const uint32_t first_page = layout->cpu_first_page[cpu];
    if (first_page == 0) continue;
    const uint32_t offset = layout->t_info_first_offset + cpu * layout->pages_per_cpu;
    store16(1 + cpu, static_cast<uint16_t>(offset));
    for (uint32_t i = 0; i < layout->pages_per_cpu; ++i)
      tracefmt::Store32(t_info + 4 * (offset + i), first_page + i);
    std::memset(base_ + size_t{first_page} * kPage, 0, tracefmt::kTbufHeaderBytes);
  }
  tracefmt::Store32(base_ + 12, layout->total_pages);
  layout_ = std::move(*layout);
  return {};
}

std::span<std::byte> TraceMemory::TInfo() {
  if (!allocated()) return {};
  return {base_ + size_t{kTInfoFirstPage} * kPage, size_t{layout_.t_info_pages} * kPage};
}

std::span<std::byte> TraceMemory::Pages(uint32_t first, uint32_t count) {
  const size_t begin = size_t{first} * kPage;
  const size_t len = size_t{count} * kPage;
  if (begin > mapped_bytes_ || len > mapped_bytes_ - begin) return {};
  return {base_ + begin, len};
}

bool TraceMemory::HasBuffer(uint32_t cpu) const {
  return allocated() && cpu < layout_.cpu_first_page.size() && layout_.cpu_first_page[cpu] != 0;
}

std::span<std::byte> TraceMemory::CpuBuffer(uint32_t cpu) {
  if (!HasBuffer(cpu)) return {};
  return Pages(layout_.cpu_first_page[cpu], layout_.pages_per_cpu);
}

std::span<std::byte> TraceMemory::CpuData(uint32_t cpu) {
  std::span<std::byte> buf = CpuBuffer(cpu);
  return buf.empty() ? buf : buf.subspan(tracefmt::kTbufHeaderBytes);
}

std::atomic_ref<uint32_t> TraceMemory::HeaderWord(uint32_t cpu, uint32_t index) const {
  std::byte* p = base_ + size_t{layout_.cpu_first_page[cpu]} * kPage + 4u * index;
  // The header is two aligned u32 words shared with another thread or process; atomic_ref needs
  // the object type, which is all this cast provides (no Xen struct is overlaid).
  return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(p));
}

uint32_t TraceMemory::LoadCons(uint32_t cpu) const {
  return HeaderWord(cpu, 0).load(std::memory_order_acquire);
}
uint32_t TraceMemory::LoadProd(uint32_t cpu) const {
  return HeaderWord(cpu, 1).load(std::memory_order_acquire);
}
void TraceMemory::StoreCons(uint32_t cpu, uint32_t value) {
  HeaderWord(cpu, 0).store(value, std::memory_order_release);
}
void TraceMemory::StoreProd(uint32_t cpu, uint32_t value) {
  HeaderWord(cpu, 1).store(value, std::memory_order_release);
}

}  // namespace simulator
