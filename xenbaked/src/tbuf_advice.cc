#include "xenbaked/tbuf_advice.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace xenbaked {

uint32_t XenMaxTbufPages(uint32_t nr_cpu_ids, uint32_t nr_cpus_limit) {
  nr_cpus_limit = std::max(nr_cpus_limit, nr_cpu_ids);
  // offsetof(struct t_info, mfn_offset[NR_CPUS]) in u32 words, rounded up.
  const uint32_t first_offset = (2u + 2u * nr_cpus_limit + 3u) / 4u;
  uint32_t max_pages = std::min<uint32_t>(0xffffu, 0xffffffffu / kTbufPageBytes);
  if (first_offset >= 0xffffu) return 0;
  uint32_t max_mfn_offset = 0xffffu - first_offset;
  if (nr_cpu_ids > 1) max_mfn_offset /= (nr_cpu_ids - 1);
  return std::min(max_pages, max_mfn_offset);
}

uint32_t PagesForHalfFull(double bytes_per_s, uint64_t latency_ns, double margin) {
  const double half = margin * bytes_per_s * static_cast<double>(latency_ns) / 1e9;
  const double pages = std::ceil((2.0 * half + 8.0) / kTbufPageBytes);
  if (!std::isfinite(pages) || pages >= std::numeric_limits<uint32_t>::max())
    return std::numeric_limits<uint32_t>::max();
  return std::max<uint32_t>(1, static_cast<uint32_t>(pages));
}

void TbufAdvisor::AddSample(const DaemonHealth& health, uint64_t now_ns) {
  std::vector<CpuBase> now;
  now.reserve(health.cpus.size());
  for (const CpuHealth& c : health.cpus)
    now.push_back({.cpu = c.cpu,
                   .records = c.records,
                   .bytes = c.bytes,
                   .lost = c.lost_records - std::min(c.lost_records_at_start, c.lost_records)});
  if (have_base_ && now_ns > base_ns_) {
    const double seconds = static_cast<double>(now_ns - base_ns_) / 1e9;
    TbufInterval interval;
    interval.max_latency_ns = health.drain_latency_interval_max_ns;
    for (const CpuBase& c : now) {
      const auto before = std::find_if(base_.begin(), base_.end(),
                                       [&](const CpuBase& b) { return b.cpu == c.cpu; });
      if (before == base_.end()) continue;
      const uint64_t bytes = c.bytes - std::min(before->bytes, c.bytes);
      const uint64_t lost = c.lost - std::min(before->lost, c.lost);
      // Dropped records never reach the daemon: they count at this CPU's mean record size.
      const double mean_record = c.records ? static_cast<double>(c.bytes) / c.records : 32.0;
      const double rate = (static_cast<double>(bytes) + lost * mean_record) / seconds;
      if (rate > interval.peak_bytes_per_s) {
        interval.peak_bytes_per_s = rate;
        interval.peak_cpu = c.cpu;
      }
      interval.lost = interval.lost || lost > 0;
    }
    AddInterval(interval);
  }
  if (!have_base_ || now_ns > base_ns_) {
    base_ = std::move(now);
    base_ns_ = now_ns;
    have_base_ = true;
  }
}

void TbufAdvisor::AddInterval(const TbufInterval& interval) {
  recent_.push_back(interval);
  while (recent_.size() > std::max<size_t>(config_.recent_intervals, 1)) recent_.pop_front();
}

TbufAdvice TbufAdvisor::Advice() const {
  TbufAdvice a;
  a.current_pages = current_pages_;
  a.max_pages = max_pages_;
  a.intervals = recent_.size();
  for (const TbufInterval& i : recent_) {
    if (i.peak_bytes_per_s > a.peak_bytes_per_s) {
      a.peak_bytes_per_s = i.peak_bytes_per_s;
      a.peak_cpu = i.peak_cpu;
    }
    a.worst_latency_ns = std::max(a.worst_latency_ns, i.max_latency_ns);
    a.loss_seen = a.loss_seen || i.lost;
  }
  a.ready = recent_.size() >= config_.min_intervals;
  if (!a.ready) return a;
  uint64_t pages = PagesForHalfFull(a.peak_bytes_per_s, a.worst_latency_ns, config_.latency_margin);
  if (a.loss_seen) pages = std::max<uint64_t>(pages, uint64_t{current_pages_} * 2);
  if (max_pages_ > 0 && pages > max_pages_) {
    pages = max_pages_;
    a.capped = true;
  }
  a.recommended_pages = static_cast<uint32_t>(pages);
  return a;
}

std::string DescribeTbufAdvice(const TbufAdvice& a) {
  std::string out = fmt::format(
      "at the peak of {:.2f} MB/s on CPU {} and a worst drain latency of {:.1f} ms, each CPU's "
      "trace buffer needs {} pages (now {}{}): set tbuf_size={} on Xen's command line and reboot "
      "(Xen allocates the trace buffers once per boot; xentrace -S cannot resize them)",
      a.peak_bytes_per_s / 1e6, a.peak_cpu, static_cast<double>(a.worst_latency_ns) / 1e6,
      a.recommended_pages, a.current_pages, a.loss_seen ? ", which lost records" : "",
      a.recommended_pages);
  if (a.capped)
    out += fmt::format(
        "; that is Xen's largest size for this host ({} pages) and still short of the need: trace "
        "fewer events (-e) or fewer CPUs",
        a.max_pages);
  return out;
}

}  // namespace xenbaked
