// simulator/trace_memory.h — the hypervisor's trace-buffer memory, laid out exactly as Xen's.
//
// Xen (xen/common/trace.c, alloc_trace_bufs) shares with dom0:
//
//   t_info area   u16 tbuf_size; u16 mfn_offset[NR_CPUS]; then, for each CPU that was online at
//                 allocation, a list of tbuf_size u32 page frame numbers at
//                 (u32*)t_info + mfn_offset[cpu]. mfn_offset[cpu] = first + cpu * pages, where
//                 first = the t_info header rounded up to u32 units. 0 = that CPU has no buffer.
//   per CPU       tbuf_size pages: u32 cons, u32 prod, then data_size = pages*4096 - 8 bytes.
//
// Here the "page frame numbers" are page indices into one mapping: page 0 is a small header of our
// own (magic, layout version), the t_info pages follow, then each CPU's buffer. The mapping is
// private memory, or a file (e.g. under /dev/shm) that another process maps page by page the way
// a dom0 tool maps Xen's frames — that is what the libxen shim does.
//
//   auto mem = TraceMemory::Create({.cpu_ids = {0, 1, 3}, .shm_path = "/dev/shm/xenbake-sim"});
//   if (!mem) die(mem.error().Describe());
//   if (auto st = mem->Allocate(/*pages=*/32); !st) die(st.error().Describe());
//   std::span<std::byte> ring = mem->CpuBuffer(/*cpu=*/3);   // cons, prod, data
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tracefmt/result.h"

namespace simulator {

// The first page of a shared trace-memory file: what the shim checks before trusting the rest.
inline constexpr uint64_t kTraceMemoryMagic = 0x314b41424e45585aull;  // "ZXENBAK1"
inline constexpr uint32_t kTraceMemoryVersion = 1;
inline constexpr uint32_t kHeaderPage = 0;
inline constexpr uint32_t kTInfoFirstPage = 1;
// Xen's NR_CPUS: sizes mfn_offset[] and so where the first page list starts. Debian builds Xen
// with a value below 1900 (t_info of 2 CPUs × 32 pages fits one page); 256 is the x86 default.
inline constexpr uint32_t kDefaultNrCpusLimit = 256;

// Where Xen puts things for a given size (calculate_tbuf_size + alloc_trace_bufs): pure, so tests
// can check it without memory.
struct TraceLayout {
  uint32_t pages_per_cpu = 0;        // after Xen's clamp to what u16 offsets can address
  uint32_t t_info_first_offset = 0;  // u32 units: the u16 header rounded up
  uint32_t t_info_pages = 0;
  uint32_t total_pages = 0;              // header page + t_info + every buffer
  std::vector<uint32_t> cpu_first_page;  // by CPU id; 0 = no buffer
  uint32_t data_size() const { return pages_per_cpu * 4096u - 8u; }
};
// `online[cpu]` says which CPU ids get a buffer; its size is nr_cpu_ids (max_cpu_id + 1).
tracefmt::Result<TraceLayout> ComputeTraceLayout(uint32_t requested_pages,
                                                 const std::vector<bool>& online,
                                                 uint32_t nr_cpus_limit);

class TraceMemory {
 public:
  struct Options {
    std::vector<uint32_t> cpu_ids;  // online CPUs (sparse ids allowed)
    uint32_t max_cpu_id = 0;        // 0: the largest of cpu_ids
    uint32_t nr_cpus_limit = kDefaultNrCpusLimit;
    std::string shm_path;  // empty: private memory; else a file created mode 0600
  };
  static tracefmt::Result<TraceMemory> Create(Options options);

  TraceMemory(TraceMemory&&) noexcept;
  TraceMemory& operator=(TraceMemory&&) noexcept;
  ~TraceMemory();

  // Allocates t_info and the buffers (cons = prod = 0). One shot, as in Xen: a second call fails
  // (kInvalidArgument), whatever the size.
  tracefmt::Status Allocate(uint32_t pages);
  bool allocated() const { return layout_.pages_per_cpu != 0; }
  const TraceLayout& layout() const { return layout_; }
  uint32_t pages_per_cpu() const { return layout_.pages_per_cpu; }
  uint32_t data_size() const { return layout_.data_size(); }
  uint32_t nr_cpu_ids() const { return static_cast<uint32_t>(online_.size()); }
  const std::string& shm_path() const { return options_.shm_path; }

  // The t_info area (empty before Allocate). Its first page index is kTInfoFirstPage.
  std::span<std::byte> TInfo();
  // Pages [first, first + count) of the mapping; empty when out of range.
  std::span<std::byte> Pages(uint32_t first, uint32_t count);
  // One CPU's whole buffer (header + data), or empty when it has none.
  std::span<std::byte> CpuBuffer(uint32_t cpu);
  std::span<std::byte> CpuData(uint32_t cpu);
  bool HasBuffer(uint32_t cpu) const;

  // cons/prod of a CPU that has a buffer, read and written atomically (another thread or
  // process is on the other side). Acquire on load, release on store.
  uint32_t LoadCons(uint32_t cpu) const;
  uint32_t LoadProd(uint32_t cpu) const;
  void StoreCons(uint32_t cpu, uint32_t value);
  void StoreProd(uint32_t cpu, uint32_t value);

 private:
  TraceMemory() = default;
  std::atomic_ref<uint32_t> HeaderWord(uint32_t cpu, uint32_t index) const;
  tracefmt::Status MapFile(size_t bytes);
  void Unmap();

  Options options_;
  std::vector<bool> online_;
  TraceLayout layout_;
  std::byte* base_ = nullptr;
  size_t mapped_bytes_ = 0;
  int fd_ = -1;
};

}  // namespace simulator
