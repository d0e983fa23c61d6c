// simulator/overflow_study.h — when do Xen's trace buffers lose records?
//
// One CPU writes records at a constant rate (sizes cycling 12–28 bytes, mean 20) through the
// producer. The consumer is woken by VIRQ_TBUF (the 50% crossing) and answers `latency` later,
// draining everything; it has no backstop timer. Analytic bound: after the crossing, half the data
// area is left, so no record is lost while
//
//     latency < T = (data_size / 2) / (rate × mean record bytes).
//
// Beyond it, each cycle (fill to half in T, wait L, drain) loses rate × (L − T) records out of
// rate × (L + T): loss = (L − T) / (L + T). The study measures loss with the step API and puts
// both beside each other.
//
//   OverflowStudyConfig config;                        // defaults: the README's sweep
//   std::vector<OverflowPoint> points = RunOverflowStudy(config);
//   fmt::print("{}", OverflowTableMarkdown(points));
//   WriteFile("overflow.svg", OverflowSvg(points));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace simulator {

struct OverflowStudyConfig {
  std::vector<uint32_t> pages = {1, 8, 32};
  std::vector<double> rates_hz = {20'000, 100'000, 500'000};  // records per second, one CPU
  std::vector<double> latency_over_bound = {0.25, 0.5, 0.9, 1.1, 1.5, 2, 4, 8};
  uint32_t cycles = 40;  // run long enough for this many fill-and-drain cycles
};

struct OverflowPoint {
  uint32_t pages = 0;
  double rate_hz = 0;
  uint64_t latency_ns = 0;
  double bound_ns = 0;  // T above
  uint64_t emitted = 0;
  uint64_t dropped = 0;
  uint64_t lost_reported = 0;  // counts carried by LOST_RECORDS records the consumer read
  double measured_loss() const { return emitted ? static_cast<double>(dropped) / emitted : 0; }
  double predicted_loss() const;
  bool agrees() const;  // loss-free below the bound, lossy above it
};

inline constexpr double kStudyMeanRecordBytes = 20.0;

std::vector<OverflowPoint> RunOverflowStudy(const OverflowStudyConfig& config);
OverflowPoint RunOverflowPoint(uint32_t pages, double rate_hz, uint64_t latency_ns,
                               uint32_t cycles);
// Rows: buffer size × rate; columns: latency / bound; cells: measured loss (predicted loss).
// Expects the points in RunOverflowStudy's order.
std::string OverflowTableMarkdown(const std::vector<OverflowPoint>& points);
// A self-contained SVG: measured loss against latency / bound (log scale), the bound as a
// vertical line and the predicted loss curve.
std::string OverflowSvg(const std::vector<OverflowPoint>& points);

}  // namespace simulator
