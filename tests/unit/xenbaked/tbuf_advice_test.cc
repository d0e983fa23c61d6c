// The trace buffer size advice: the arithmetic (rate × latency × margin, rounding up to pages,
// Xen's cap), the per-interval rates derived from health samples (dropped records included), and
// no advice before enough intervals.
#include "xenbaked/tbuf_advice.h"

#include <gtest/gtest.h>

namespace xenbaked {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kMs = 1'000'000;

TbufAdviceConfig Config(size_t min_intervals, size_t recent = 60) {
  TbufAdviceConfig c;
  c.min_intervals = min_intervals;
  c.recent_intervals = recent;
  return c;
}

TbufInterval Interval(double rate, uint64_t latency_ns, bool lost = false) {
  TbufInterval i;
  i.peak_bytes_per_s = rate;
  i.max_latency_ns = latency_ns;
  i.lost = lost;
  return i;
}

TEST(TbufAdvice, PagesHoldMarginTimesLatencyAboveHalfFull) {
  // 4 MB/s for 10 ms is 40,000 bytes; 2× margin: 80,000 above half, 160,008 in all → 40 pages.
  EXPECT_EQ(PagesForHalfFull(4e6, 10 * kMs, 2.0), 40u);
  // One byte more than fits in 39 pages' data area still needs the 40th.
  EXPECT_EQ(PagesForHalfFull((39.0 * 4096 - 8) / 4 + 1, kSecond, 2.0), 40u);
  EXPECT_EQ(PagesForHalfFull((39.0 * 4096 - 8) / 4, kSecond, 2.0), 39u);
  EXPECT_EQ(PagesForHalfFull(0, 10 * kMs, 2.0), 1u);
  EXPECT_EQ(PagesForHalfFull(1e6, 0, 2.0), 1u);
  EXPECT_EQ(PagesForHalfFull(1e30, kSecond, 2.0), UINT32_MAX);
}

TEST(TbufAdvice, XensLargestSizeFollowsTheCpuCount) {
  // t_info's header: 2 + 2 × 256 bytes = 129 words; u16 offsets for the last CPU's pages.
  EXPECT_EQ(XenMaxTbufPages(1), 0xffffu - 129);
  EXPECT_EQ(XenMaxTbufPages(2), 0xffffu - 129);
  EXPECT_EQ(XenMaxTbufPages(4), (0xffffu - 129) / 3);
  EXPECT_EQ(XenMaxTbufPages(256), (0xffffu - 129) / 255);
  // More CPU ids than the assumed NR_CPUS: the header grows with them.
  EXPECT_EQ(XenMaxTbufPages(512), (0xffffu - 257) / 511);
}

DaemonHealth Sample(uint64_t bytes0, uint64_t bytes1, uint64_t lost1, uint64_t latency_ns) {
  DaemonHealth h;
  h.cpus.resize(2);
  h.cpus[0].cpu = 0;
  h.cpus[0].bytes = bytes0;
  h.cpus[0].records = bytes0 / 16;
  h.cpus[1].cpu = 3;
  h.cpus[1].bytes = bytes1;
  h.cpus[1].records = bytes1 / 32;
  h.cpus[1].lost_records = lost1;
  h.drain_latency_interval_max_ns = latency_ns;
  return h;
}

TEST(TbufAdvice, NoAdviceBeforeEnoughIntervals) {
  TbufAdvisor advisor(Config(3), 32, 1000);
  advisor.AddSample(Sample(0, 0, 0, 0), 0);
  EXPECT_FALSE(advisor.Advice().ready);
  advisor.AddSample(Sample(1000, 1000, 0, kMs), kSecond);
  advisor.AddSample(Sample(2000, 2000, 0, kMs), 2 * kSecond);
  EXPECT_FALSE(advisor.Advice().ready);
  EXPECT_EQ(advisor.Advice().intervals, 2u);
  advisor.AddSample(Sample(3000, 3000, 0, kMs), 3 * kSecond);
  EXPECT_TRUE(advisor.Advice().ready);
}

TEST(TbufAdvice, WorstCpuWorstIntervalAndDroppedRecordsCount) {
  TbufAdvisor advisor(Config(2), 8, 1000);
  advisor.AddSample(Sample(0, 0, 0, 0), 0);
  // CPU 3: 1 MB in 0.5 s (2 MB/s), plus 10,000 dropped records at its mean of 32 bytes.
  advisor.AddSample(Sample(100'000, 1'000'000, 0, 3 * kMs), kSecond / 2);
  advisor.AddSample(Sample(200'000, 2'000'000, 10'000, 5 * kMs), kSecond);
  const TbufAdvice a = advisor.Advice();
  ASSERT_TRUE(a.ready);
  EXPECT_EQ(a.peak_cpu, 3u);
  EXPECT_DOUBLE_EQ(a.peak_bytes_per_s, (1'000'000.0 + 10'000 * 32.0) / 0.5);
  EXPECT_EQ(a.worst_latency_ns, 5 * kMs);
  EXPECT_TRUE(a.loss_seen);
  // 2.64 MB/s × 5 ms × 2 = 26,400 bytes above half: 52,808 bytes, 13 pages; loss: ≥ 2 × 8.
  EXPECT_EQ(PagesForHalfFull(a.peak_bytes_per_s, a.worst_latency_ns, 2.0), 13u);
  EXPECT_EQ(a.recommended_pages, 16u);
  EXPECT_FALSE(a.capped);
}

TEST(TbufAdvice, LossBeforeTheStartIsNotTheRunsLoss) {
  TbufAdvisor advisor(Config(1), 32, 1000);
  DaemonHealth h = Sample(0, 0, 0, 0);
  h.cpus[1].lost_records = h.cpus[1].lost_records_at_start = 5000;
  advisor.AddSample(h, 0);
  h.cpus[1].lost_records = h.cpus[1].lost_records_at_start = 9000;  // found in the initial data
  h.drain_latency_interval_max_ns = kMs;
  advisor.AddSample(h, kSecond);
  EXPECT_FALSE(advisor.Advice().loss_seen);
  EXPECT_EQ(advisor.Advice().recommended_pages, 1u);
}

TEST(TbufAdvice, CappedAtXensLargest) {
  TbufAdvisor advisor(Config(1), 32, 100);
  advisor.AddInterval(Interval(1e9, kSecond));
  const TbufAdvice a = advisor.Advice();
  EXPECT_EQ(a.recommended_pages, 100u);
  EXPECT_TRUE(a.capped);
}

TEST(TbufAdvice, OldIntervalsAgeOut) {
  TbufAdvisor advisor(Config(1, 3), 32, 10000);
  advisor.AddInterval(Interval(1e8, 100 * kMs, true));
  EXPECT_GT(advisor.Advice().recommended_pages, 32u);
  for (int i = 0; i < 3; ++i) advisor.AddInterval(Interval(1e5, kMs));
  EXPECT_FALSE(advisor.Advice().loss_seen);
  EXPECT_EQ(advisor.Advice().recommended_pages, 1u);
}

}  // namespace
}  // namespace xenbaked
