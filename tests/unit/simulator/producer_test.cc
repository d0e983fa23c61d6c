// The producer against xen/common/trace.c's observable behaviour.
#include "simulator/producer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <optional>

#include "simulator/notifier.h"
#include "simulator/trace_memory.h"
#include "test_ring.h"
#include "tracefmt/events.h"

namespace simulator {
namespace {

namespace ev = tracefmt::ev;
using testing::DrainCpu;
using testing::Unconsumed;
using tracefmt::Record;

constexpr uint32_t kDataSize1Page = 4096 - 8;
constexpr uint32_t kTestEvent = ev::kPvHypercallV2;  // any admitted event

uint16_t Load16(std::span<const std::byte> bytes, size_t index) {
  uint16_t v;
  std::memcpy(&v, bytes.data() + 2 * index, 2);
  return v;
}

class ProducerTest : public ::testing::Test {
 protected:
  void SetUpHost(std::vector<uint32_t> cpus, uint32_t pages, uint32_t max_cpu_id = 0) {
    auto mem = TraceMemory::Create({cpus, max_cpu_id, kDefaultNrCpusLimit, ""});
    ASSERT_TRUE(mem.ok()) << mem.error().Describe();
    memory_.emplace(std::move(*mem));
    auto notifier = EventFdNotifier::Create();
    ASSERT_TRUE(notifier.ok());
    notifier_.emplace(std::move(*notifier));
    producer_.emplace(*memory_, &*notifier_);
    ASSERT_TRUE(producer_->SetSize(pages).ok());
  }
  TraceOutcome Trace12(uint32_t cpu, uint64_t tsc) {  // 12 bytes: header + TSC
    return producer_->Trace(cpu, kTestEvent, tsc, {});
  }
  // Writes 4-byte records (no TSC), draining as it goes, until `to_wrap` bytes are left before
  // the end of CPU 0's data area.
  void AdvanceProdTo(uint32_t to_wrap) {
    for (;;) {
      const uint32_t prod = memory_->LoadProd(0);
      const uint32_t offset = prod % memory_->data_size();
      if (memory_->data_size() - offset == to_wrap) return;
      ASSERT_EQ(producer_->Trace(0, kTestEvent, 0, {}, /*with_tsc=*/false), TraceOutcome::kWritten);
      DrainCpu(*memory_, 0);
    }
  }

  std::optional<TraceMemory> memory_;
  std::optional<EventFdNotifier> notifier_;
  std::optional<TraceProducer> producer_;
};

TEST(TraceLayoutTest, MatchesXensTInfoArithmetic) {
  auto layout = ComputeTraceLayout(32, {true, true}, /*nr_cpus_limit=*/256);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->t_info_first_offset, 129u);  // (2 + 2*256) bytes = 128.5 words, rounded up
  EXPECT_EQ(layout->pages_per_cpu, 32u);
  EXPECT_EQ(layout->t_info_pages, 1u);  // xc_tbuf_enable's size: 4096, as on real Xen
  EXPECT_EQ(layout->data_size(), 32u * 4096 - 8);
}

TEST(TraceLayoutTest, ClampsPagesSoU16OffsetsReachTheLastCpu) {
  auto layout = ComputeTraceLayout(100000, std::vector<bool>(4, true), 256);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->pages_per_cpu, (0xffffu - 129u) / 3u);
}

TEST_F(ProducerTest, TInfoListsEachOnlineCpusFramesAndZeroForOthers) {
  SetUpHost({0, 2, 5}, /*pages=*/2, /*max_cpu_id=*/7);
  const std::span<std::byte> t_info = memory_->TInfo();
  ASSERT_FALSE(t_info.empty());
  EXPECT_EQ(Load16(t_info, 0), 2u);
  const uint32_t first = memory_->layout().t_info_first_offset;
  for (uint32_t cpu : {1u, 3u, 4u, 6u, 7u}) EXPECT_EQ(Load16(t_info, 1 + cpu), 0u) << cpu;
  for (uint32_t cpu : {0u, 2u, 5u}) {
    const uint16_t offset = Load16(t_info, 1 + cpu);
    EXPECT_EQ(offset, first + cpu * 2);
    const uint32_t mfn0 = tracefmt::Load32(t_info.data() + 4 * offset);
    const uint32_t mfn1 = tracefmt::Load32(t_info.data() + 4 * (offset + 1));
    EXPECT_EQ(mfn1, mfn0 + 1);
    EXPECT_EQ(memory_->Pages(mfn0, 2).data(), memory_->CpuBuffer(cpu).data());
  }
  EXPECT_EQ(Trace12(1, 100), TraceOutcome::kNoBuffer);
  EXPECT_EQ(Trace12(5, 100), TraceOutcome::kWritten);
}

TEST_F(ProducerTest, WrittenRecordsDrainBackUnchanged) {
  SetUpHost({0}, 1);
  ASSERT_EQ(producer_->Trace(0, ev::kSwitch, 1000, {1, 2, 3, 4}), TraceOutcome::kWritten);
  ASSERT_EQ(producer_->Trace(0, ev::kDomAdd, 0, {9}, /*with_tsc=*/false), TraceOutcome::kWritten);
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_TRUE(out.drain.ok());
  ASSERT_EQ(out.records.size(), 2u);
  EXPECT_EQ(out.records[0].event, ev::kSwitch);
  EXPECT_EQ(out.records[0].tsc, 1000u);
  EXPECT_EQ(out.records[0].extra_words, 4);
  EXPECT_EQ(out.records[0].extra[3], 4u);
  EXPECT_FALSE(out.records[1].has_tsc);
  EXPECT_EQ(out.records[1].extra[0], 9u);
}

TEST_F(ProducerTest, ExtraBytesRoundUpToWordsAndStopAtSeven) {
  SetUpHost({0}, 1);
  const std::byte five[5] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
  ASSERT_EQ(producer_->TraceBytes(0, kTestEvent, 1, five), TraceOutcome::kWritten);
  std::vector<std::byte> forty(40, std::byte{7});
  ASSERT_EQ(producer_->TraceBytes(0, kTestEvent, 2, forty), TraceOutcome::kWritten);
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_EQ(out.records.size(), 2u);
  EXPECT_EQ(out.records[0].extra_words, 2);
  EXPECT_EQ(out.records[0].extra[1], 5u);  // zero-padded
  EXPECT_EQ(out.records[1].extra_words, 7);
}

TEST_F(ProducerTest, FullBufferDropsTheNewestAndCountsIt) {
  SetUpHost({0}, 1);
  int written = 0;
  while (Trace12(0, 10 + written) == TraceOutcome::kWritten) ++written;
  EXPECT_EQ(written, static_cast<int>(kDataSize1Page / 12));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Trace12(0, 5000 + i), TraceOutcome::kDropped);
  const CpuTraceStats& s = producer_->stats(0);
  EXPECT_EQ(s.dropped, 6u);
  EXPECT_EQ(s.pending_lost, 6u);
  EXPECT_EQ(s.first_lost_tsc, 10u + written);  // the first drop, not a later one
  // The oldest records are intact: nothing was overwritten.
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_EQ(out.records.size(), static_cast<size_t>(written));
  EXPECT_EQ(out.records.front().tsc, 10u);
  EXPECT_EQ(out.records.back().tsc, 10u + written - 1);
}

TEST_F(ProducerTest, LostRecordPrecedesTheNextRecordThatFits) {
  SetUpHost({0}, 1);
  uint64_t tsc = 100;
  while (Trace12(0, tsc) == TraceOutcome::kWritten) ++tsc;  // the failing one is the first drop
  const uint64_t first_drop_tsc = tsc;
  Trace12(0, ++tsc);
  Trace12(0, ++tsc);
  producer_->SetCurrent(0, /*domain=*/7, /*vcpu=*/3);
  DrainCpu(*memory_, 0);
  ASSERT_EQ(Trace12(0, 9999), TraceOutcome::kWritten);
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_TRUE(out.drain.ok());
  // 340 records of 12 bytes left 8 bytes before the end: too few for the 28-byte LOST record.
  ASSERT_EQ(out.records.size(), 3u);
  EXPECT_EQ(out.records[0].event, ev::kWrapBuffer);
  EXPECT_EQ(out.records[0].SizeBytes(), 8u);
  const Record& lost = out.records[1];
  EXPECT_EQ(lost.event, ev::kLostRecords);
  EXPECT_EQ(lost.SizeBytes(), kLostRecordBytes);
  EXPECT_EQ(lost.tsc, 9999u);
  EXPECT_EQ(lost.extra[0], 3u);
  EXPECT_EQ(lost.extra[1], 7u | (3u << 16));
  EXPECT_EQ(lost.extra[2] | (uint64_t{lost.extra[3]} << 32), first_drop_tsc);
  auto decoded = tracefmt::AsLostRecords(lost);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->count, 3u);
  EXPECT_EQ(out.records[2].tsc, 9999u);
  const CpuTraceStats& s = producer_->stats(0);
  EXPECT_EQ(s.dropped_reported, 3u);
  EXPECT_EQ(s.pending_lost, 0u);
  EXPECT_EQ(s.lost_records_written, 1u);
}

TEST_F(ProducerTest, WrapRecordPadsExactlyToTheEnd) {
  SetUpHost({0}, 1);
  AdvanceProdTo(8);
  ASSERT_EQ(Trace12(0, 1), TraceOutcome::kWritten);
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_EQ(out.records.size(), 2u);
  EXPECT_EQ(out.records[0].event, ev::kWrapBuffer);
  EXPECT_FALSE(out.records[0].has_tsc);
  EXPECT_EQ(out.records[0].extra_words, 1);
  EXPECT_EQ(memory_->LoadProd(0), kDataSize1Page + 12);  // the record starts the second lap
}

TEST_F(ProducerTest, WrapRecordTakesATscWhenSevenWordsAreTooFew) {
  SetUpHost({0}, 1);
  AdvanceProdTo(36);
  const uint32_t seven[7] = {1, 2, 3, 4, 5, 6, 7};
  ASSERT_EQ(producer_->Trace(0, kTestEvent, 77, seven), TraceOutcome::kWritten);  // 40 bytes
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_EQ(out.records.size(), 2u);
  EXPECT_EQ(out.records[0].event, ev::kWrapBuffer);
  EXPECT_TRUE(out.records[0].has_tsc);
  EXPECT_EQ(out.records[0].tsc, 77u);
  EXPECT_EQ(out.records[0].SizeBytes(), 36u);
  EXPECT_EQ(out.records[1].extra[6], 7u);
}

TEST_F(ProducerTest, LostRecordEndingExactlyAtTheWrapNeedsNoPadding) {
  SetUpHost({0}, 1);
  AdvanceProdTo(28 + 12);  // room for LOST (28), then the 12-byte record crosses: wrap after LOST
  // Make a loss: fill the rest of the lap without consuming.
  while (Trace12(0, 5) == TraceOutcome::kWritten) {
  }
  DrainCpu(*memory_, 0);
  const uint32_t to_wrap = memory_->data_size() - memory_->LoadProd(0) % memory_->data_size();
  ASSERT_EQ(Trace12(0, 6), TraceOutcome::kWritten);
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_TRUE(out.drain.ok());
  // Whatever the position, the sequence is [WRAP] LOST [WRAP] record and prod stays aligned.
  ASSERT_GE(out.records.size(), 2u);
  size_t i = 0;
  if (to_wrap < kLostRecordBytes) {
    EXPECT_EQ(out.records[i++].event, ev::kWrapBuffer);
  }
  EXPECT_EQ(out.records[i++].event, ev::kLostRecords);
  if (out.records.size() > i + 1) {
    EXPECT_EQ(out.records[i++].event, ev::kWrapBuffer);
  }
  EXPECT_EQ(out.records[i].event, kTestEvent);
}

TEST_F(ProducerTest, NotifiesOncePerCrossingOfHalfFull) {
  SetUpHost({0}, 1);
  // 12-byte records: the 171st takes 12*170 = 2040 bytes (below 2044) to 2052.
  for (int i = 0; i < 170; ++i) Trace12(0, i);
  EXPECT_EQ(producer_->stats(0).notifications, 0u);
  EXPECT_EQ(notifier_->Ack(), 0u);
  Trace12(0, 170);
  EXPECT_EQ(producer_->stats(0).notifications, 1u);
  for (int i = 0; i < 200; ++i) Trace12(0, 171 + i);  // fills up and drops: no more
  EXPECT_EQ(producer_->stats(0).notifications, 1u);
  EXPECT_EQ(notifier_->Ack(), 1u);
  DrainCpu(*memory_, 0);
  for (int i = 0; i < 200; ++i) Trace12(0, 1000 + i);  // LOST + records: crosses again
  EXPECT_EQ(producer_->stats(0).notifications, 2u);
  EXPECT_EQ(notifier_->Ack(), 1u);
}

TEST_F(ProducerTest, EventMaskNeedsMaskClassAndSubclassToIntersect) {
  SetUpHost({0}, 1);
  struct Case {
    uint32_t mask;
    uint32_t event;
    bool admitted;
  } cases[] = {
      {ev::kSched, ev::kRunstateChange, true},
      {ev::kSched, ev::kPvHypercallV2, false},
      {0x00020000, ev::kRunstateChange, false},  // class bit only: no subclass nibble
      {ev::kSchedMin, ev::kRunstateChange, true},
      {ev::kSchedMin, ev::kSwitch, false},       // verbose subclass not selected
      {0x00011000, ev::kRunstateChange, false},  // subclass matches, class does not
      {ev::kAll, ev::kSwitch, true},
  };
  for (const Case& c : cases) {
    producer_->SetEventMask(c.mask);
    const TraceOutcome got = producer_->Trace(0, c.event, 1, {});
    EXPECT_EQ(got, c.admitted ? TraceOutcome::kWritten : TraceOutcome::kFiltered);
    const auto out = DrainCpu(*memory_, 0);
    EXPECT_EQ(out.records.size(), c.admitted ? 1u : 0u)
        << std::hex << "mask " << c.mask << " event " << c.event;
  }
}

TEST_F(ProducerTest, CpuMaskSelectsCpus) {
  SetUpHost({0, 1}, 1);
  const uint8_t only_cpu1[] = {0x2};
  producer_->SetCpuMask(only_cpu1);
  EXPECT_EQ(Trace12(0, 1), TraceOutcome::kFiltered);
  EXPECT_EQ(Trace12(1, 1), TraceOutcome::kWritten);
  EXPECT_EQ(producer_->stats(0).filtered, 1u);
}

TEST_F(ProducerTest, BogusConsDisablesTracingAndCountsTheRecordLost) {
  SetUpHost({0}, 1);
  ASSERT_EQ(Trace12(0, 1), TraceOutcome::kWritten);
  memory_->StoreCons(0, 2);  // unaligned
  EXPECT_EQ(Trace12(0, 2), TraceOutcome::kDropped);
  EXPECT_FALSE(producer_->enabled());
  EXPECT_TRUE(producer_->disabled_by_bogus_pointers());
  EXPECT_EQ(Trace12(0, 3), TraceOutcome::kDisabled);
  memory_->StoreCons(0, 2 * memory_->data_size());  // out of range is bogus too
  ASSERT_TRUE(producer_->Enable().ok());
  EXPECT_EQ(Trace12(0, 4), TraceOutcome::kDropped);
  EXPECT_FALSE(producer_->enabled());
  // A consumer that resynchronises (cons = prod) and re-enables sees the loss reported.
  memory_->StoreCons(0, memory_->LoadProd(0));
  ASSERT_TRUE(producer_->Enable().ok());
  ASSERT_EQ(Trace12(0, 5), TraceOutcome::kWritten);
  const auto out = DrainCpu(*memory_, 0);
  ASSERT_EQ(out.records.size(), 2u);
  auto lost = tracefmt::AsLostRecords(out.records[0]);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->count, 2u);
  EXPECT_EQ(lost->first_tsc, 2u);
}

TEST_F(ProducerTest, SizeIsSetOnlyOnce) {
  SetUpHost({0}, 2);
  EXPECT_FALSE(producer_->SetSize(2).ok());
  EXPECT_FALSE(producer_->SetSize(8).ok());
  EXPECT_EQ(memory_->pages_per_cpu(), 2u);
}

TEST_F(ProducerTest, DisableForgetsPendingLosses) {
  SetUpHost({0}, 1);
  while (Trace12(0, 1) == TraceOutcome::kWritten) {
  }
  Trace12(0, 2);
  producer_->Disable();
  EXPECT_EQ(Trace12(0, 3), TraceOutcome::kDisabled);
  const CpuTraceStats& s = producer_->stats(0);
  EXPECT_EQ(s.dropped, 2u);
  EXPECT_EQ(s.dropped_cleared, 2u);
  EXPECT_EQ(s.pending_lost, 0u);
  DrainCpu(*memory_, 0);
  ASSERT_TRUE(producer_->Enable().ok());
  ASSERT_EQ(Trace12(0, 4), TraceOutcome::kWritten);
  const auto out = DrainCpu(*memory_, 0);
  for (const Record& r : out.records) EXPECT_NE(r.event, ev::kLostRecords);
}

TEST_F(ProducerTest, NoBufferBeforeSizeIsSet) {
  auto mem = TraceMemory::Create({{0}, 0, kDefaultNrCpusLimit, ""});
  ASSERT_TRUE(mem.ok());
  TraceProducer producer(*mem, nullptr);
  EXPECT_FALSE(producer.Enable().ok());
  EXPECT_EQ(producer.GetInfo().t_info_first_page, 0u);
  EXPECT_EQ(producer.Trace(0, kTestEvent, 1, {}), TraceOutcome::kDisabled);
}

}  // namespace
}  // namespace simulator
