// ParseTInfo over hand-built t_info areas: the layout Xen's alloc_trace_bufs writes (u16
// tbuf_size, u16 mfn_offset[nr_cpu_ids], then per CPU a list of tbuf_size u32 frame numbers at
// u32 index mfn_offset[cpu]), and areas a broken or hostile hypervisor could hand us.
#include "xenbaked/t_info.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace xenbaked {
namespace {

// A t_info area of `words` u32 words, filled in field by field (little-endian host, as Xen).
class TInfoBuilder {
 public:
  explicit TInfoBuilder(size_t words) : bytes_(words * 4) {}
  TInfoBuilder& PagesPerCpu(uint16_t pages) { return Put16(0, pages); }
  TInfoBuilder& Offset(uint32_t cpu, uint16_t u32_index) { return Put16(2 + 2 * cpu, u32_index); }
  // Writes `frames` as the list at u32 index `u32_index`.
  TInfoBuilder& Frames(uint16_t u32_index, std::vector<uint32_t> frames) {
    for (size_t i = 0; i < frames.size(); ++i)
      std::memcpy(bytes_.data() + (size_t{u32_index} + i) * 4, &frames[i], 4);
    return *this;
  }
  std::span<const std::byte> bytes() const { return bytes_; }

 private:
  TInfoBuilder& Put16(size_t offset, uint16_t v) {
    std::memcpy(bytes_.data() + offset, &v, 2);
    return *this;
  }
  std::vector<std::byte> bytes_;
};

TEST(TInfo, ListsEachCpusFramesInBufferOrder) {
  // 2 CPUs, 3 pages each: header is 2 + 2*2 = 6 bytes (u32 index 2 is the first free word).
  TInfoBuilder t(16);
  t.PagesPerCpu(3).Offset(0, 2).Offset(1, 5);
  t.Frames(2, {100, 101, 102}).Frames(5, {900, 7, 55});
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/2);
  ASSERT_TRUE(layout) << layout.error().Describe();
  EXPECT_EQ(layout->pages_per_cpu, 3u);
  ASSERT_EQ(layout->cpus.size(), 2u);
  EXPECT_EQ(layout->cpus[0].cpu, 0u);
  EXPECT_EQ(layout->cpus[0].frames, (std::vector<uint32_t>{100, 101, 102}));
  EXPECT_EQ(layout->cpus[1].cpu, 1u);
  EXPECT_EQ(layout->cpus[1].frames, (std::vector<uint32_t>{900, 7, 55}));
  EXPECT_TRUE(FramesContiguous(layout->cpus[0].frames));
  EXPECT_FALSE(FramesContiguous(layout->cpus[1].frames));
}

TEST(TInfo, OffsetZeroMeansNoBufferAndSparseIdsKeepTheirNumbers) {
  // CPU ids 0..5, buffers only on 1 and 4 (the others offline or absent).
  TInfoBuilder t(32);
  t.PagesPerCpu(2).Offset(1, 8).Offset(4, 12);
  t.Frames(8, {10, 11}).Frames(12, {40, 41});
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/6);
  ASSERT_TRUE(layout) << layout.error().Describe();
  ASSERT_EQ(layout->cpus.size(), 2u);
  EXPECT_EQ(layout->cpus[0].cpu, 1u);
  EXPECT_EQ(layout->cpus[0].frames, (std::vector<uint32_t>{10, 11}));
  EXPECT_EQ(layout->cpus[1].cpu, 4u);
  EXPECT_EQ(layout->cpus[1].frames, (std::vector<uint32_t>{40, 41}));
}

TEST(TInfo, AListEndingExactlyAtTheEndOfTheAreaIsAccepted) {
  TInfoBuilder t(6);
  t.PagesPerCpu(4).Offset(0, 2).Frames(2, {1, 2, 3, 4});  // words 2..5 of 6
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/1);
  ASSERT_TRUE(layout) << layout.error().Describe();
  EXPECT_EQ(layout->cpus[0].frames, (std::vector<uint32_t>{1, 2, 3, 4}));
}

TEST(TInfo, AFrameListOutsideTheAreaIsRejectedNotFollowed) {
  TInfoBuilder t(8);  // 32 bytes
  t.PagesPerCpu(2).Offset(0, 2).Offset(1, 7).Frames(2, {5, 6});
  // CPU 1's list would be words 7..8: one word past the end.
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/2);
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code, tracefmt::ErrorCode::kCorrupt);
  const std::string text = layout.error().Describe();
  EXPECT_NE(text.find("cpu 1"), std::string::npos) << text;
  EXPECT_NE(text.find("outside"), std::string::npos) << text;
  EXPECT_EQ(layout.error().offset, 4u);  // where CPU 1's offset is stored

  TInfoBuilder far(8);
  far.PagesPerCpu(1).Offset(0, 0xffff);  // the largest offset a u16 can hold
  auto far_layout = ParseTInfo(far.bytes(), /*nr_cpu_ids=*/1);
  ASSERT_FALSE(far_layout);
  EXPECT_EQ(far_layout.error().code, tracefmt::ErrorCode::kCorrupt);
}

TEST(TInfo, AFrameListOverlappingTheOffsetTableIsRejected) {
  // Index 1 is bytes 4..7: inside the offset table of 4 CPUs (bytes 0..9).
  TInfoBuilder t(16);
  t.PagesPerCpu(1).Offset(0, 1);
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/4);
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code, tracefmt::ErrorCode::kCorrupt);
}

TEST(TInfo, ZeroPagesPerCpuMeansNoBuffers) {
  TInfoBuilder t(8);
  t.PagesPerCpu(0).Offset(0, 2);
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/1);
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code, tracefmt::ErrorCode::kNotFound);
  EXPECT_NE(layout.error().Describe().find("0 pages"), std::string::npos)
      << layout.error().Describe();
}

TEST(TInfo, NoCpuWithABufferIsAnError) {
  TInfoBuilder t(8);
  t.PagesPerCpu(2);  // every offset 0
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/4);
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code, tracefmt::ErrorCode::kNotFound);
}

TEST(TInfo, AnAreaShorterThanItsOffsetTableIsTruncated) {
  TInfoBuilder t(2);  // 8 bytes; 8 CPU ids need 2 + 16
  t.PagesPerCpu(1);
  auto layout = ParseTInfo(t.bytes(), /*nr_cpu_ids=*/8);
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code, tracefmt::ErrorCode::kTruncated);
  EXPECT_FALSE(ParseTInfo({}, /*nr_cpu_ids=*/1));
}

TEST(TInfo, PagesRoundUp) {
  EXPECT_EQ(TInfoPages(0), 0u);
  EXPECT_EQ(TInfoPages(1), 1u);
  EXPECT_EQ(TInfoPages(4096), 1u);
  EXPECT_EQ(TInfoPages(4097), 2u);
}

}  // namespace
}  // namespace xenbaked
