// xenbaked/tbuf_advice.h — the smallest per-CPU trace buffer that the measured load needs.
//
// Xen raises VIRQ_TBUF when a CPU's buffer crosses half full; the daemon then needs its drain
// latency (interrupt to consumer pointer published) to pass before that CPU has room again, and
// meanwhile the CPU keeps writing. The buffer is big enough when the half above the interrupt
// holds what a CPU writes in a margin times the worst latency:
//
//   data bytes / 2 >= margin × peak per-CPU bytes/s × worst drain latency
//   pages = ceil((2 × margin × rate × latency + 8) / 4096)          (8: the cons/prod header)
//
// `rate` is the worst CPU in the worst of the recent publication intervals, counting the bytes
// the records Xen dropped would have taken (LOST_RECORDS counts × that CPU's mean record size),
// so an overloaded buffer does not hide its own load; `latency` is the worst drain latency of
// the same intervals. Loss in those intervals means the current size was demonstrably too small
// for some burst that a 1 s average smooths out: the advice is then at least twice the current
// size. The result is capped at Xen's largest size for the host (tbuf_size is a u16, and the
// highest CPU's page list must start at an offset t_info's u16 can hold). No advice before
// `min_intervals` intervals.
//
// Xen allocates the buffers once per boot: the size is `tbuf_size=N` (pages per CPU) on Xen's
// command line; `xentrace -S` and xc_tbuf_enable cannot change it afterwards.
//
//   TbufAdvisor advisor({}, buffers.pages_per_cpu, XenMaxTbufPages(physinfo.max_cpu_id + 1));
//   advisor.AddSample(loop.SampleHealth(), scheduler.NowNs());   // each publication
//   TbufAdvice a = advisor.Advice();                            // a.ready, a.recommended_pages
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "xenbaked/health.h"

namespace xenbaked {

inline constexpr uint32_t kTbufPageBytes = 4096;
// Xen's NR_CPUS as Debian and Xen's x86 default build it: it sizes t_info's header.
inline constexpr uint32_t kXenDefaultNrCpus = 256;

// Xen's clamp on tbuf_size for a host whose CPU ids go up to nr_cpu_ids - 1 (trace.c's
// calculate_tbuf_size): u16 pages, prod within a u32, and the highest CPU's page list at a u16
// offset after t_info's header of `nr_cpus_limit` u16 offsets.
uint32_t XenMaxTbufPages(uint32_t nr_cpu_ids, uint32_t nr_cpus_limit = kXenDefaultNrCpus);

// The formula above, at least one page, no cap. 0 bytes/s or 0 ns give one page.
uint32_t PagesForHalfFull(double bytes_per_s, uint64_t latency_ns, double margin);

// The advice as one log line, naming Xen's boot option (for a ready advice).
std::string DescribeTbufAdvice(const TbufAdvice& advice);

struct TbufAdviceConfig {
  double latency_margin = 2.0;   // × the worst drain latency
  size_t recent_intervals = 60;  // publication intervals remembered (a minute at 1 s)
  size_t min_intervals = 5;      // no advice before this many
};

// TbufAdvice, the published result, is in xenbaked/health.h.

// One publication interval's measurements.
struct TbufInterval {
  double peak_bytes_per_s = 0.0;
  uint32_t peak_cpu = 0;
  uint64_t max_latency_ns = 0;
  bool lost = false;
};

class TbufAdvisor {
 public:
  TbufAdvisor(TbufAdviceConfig config, uint32_t current_pages, uint32_t max_pages)
      : config_(config), current_pages_(current_pages), max_pages_(max_pages) {}

  // From successive health samples (DrainLoop::SampleHealth) at monotonic `now_ns`: the
  // interval's per-CPU byte rates, loss during the run (not before the start), and the worst
  // drain latency since the previous sample. The first sample only sets the baseline.
  void AddSample(const DaemonHealth& health, uint64_t now_ns);
  void AddInterval(const TbufInterval& interval);
  TbufAdvice Advice() const;

 private:
  struct CpuBase {
    uint32_t cpu = 0;
    uint64_t records = 0;
    uint64_t bytes = 0;
    uint64_t lost = 0;  // during the run
  };
  TbufAdviceConfig config_;
  uint32_t current_pages_;
  uint32_t max_pages_;
  std::deque<TbufInterval> recent_;
  std::vector<CpuBase> base_;
  uint64_t base_ns_ = 0;
  bool have_base_ = false;
};

}  // namespace xenbaked
