#include "xenbaked/health.h"

#include <bit>

namespace xenbaked {

void LatencyHistogram::Add(uint64_t ns) {
  const size_t bucket = std::min<size_t>(std::bit_width(ns), kBuckets - 1);
  ++buckets[bucket];
  min_ns = count == 0 ? ns : std::min(min_ns, ns);
  max_ns = std::max(max_ns, ns);
  sum_ns += ns;
  ++count;
}

uint64_t LatencyHistogram::QuantileUpperNs(double q) const {
  if (count == 0) return 0;
  const double target = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (static_cast<double>(seen) >= target && seen > 0) return std::min(BucketUpperNs(i), max_ns);
  }
  return max_ns;
}

}  // namespace xenbaked
