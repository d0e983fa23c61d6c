#include "tracefmt/ring.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tracefmt/events.h"
#include "tracefmt/testing/trace_builder.h"

namespace tracefmt {
namespace {

using testing::Rec;

constexpr uint32_t kDataSize = RingDataSize(/*pages=*/1);  // 4088

// One CPU's data area with helpers to place records as Xen would.
class FakeRing {
 public:
  FakeRing() : data_(kDataSize) {}
  // Writes `rec` at `offset` of the data area and returns the offset after it.
  uint32_t Put(uint32_t offset, const Record& rec) {
    EXPECT_GT(EncodeRecord(rec, std::span<std::byte>(data_).subspan(offset)), 0u);
    return offset + rec.SizeBytes();
  }
  // Pads from `offset` to the end of the data area with one WRAP_BUFFER record that fills the gap
  // exactly, as Xen's insert_wrap_record does (a TSC only when the words alone cannot fill it).
  void PadToEnd(uint32_t offset) {
    const uint32_t gap = kDataSize - offset;
    ASSERT_GE(gap, 4u);
    ASSERT_LE(gap, kMaxRecordBytes);
    const bool tsc = (gap - 4) / 4 > kMaxExtraWords;
    const uint32_t words = (gap - 4 - (tsc ? 8 : 0)) / 4;
    Store32(data_.data() + offset, MakeHeader(ev::kWrapBuffer, words, tsc));
  }
  std::span<const std::byte> data() const { return data_; }
  std::span<std::byte> mutable_data() { return data_; }

 private:
  std::vector<std::byte> data_;
};

struct Drained {
  RingDrain result;
  std::vector<Record> records;
  std::vector<std::byte> run_bytes;
  int runs = 0;
};

Drained Drain(const FakeRing& ring, uint32_t cons, uint32_t prod, uint32_t max_bytes = ~0u) {
  Drained d;
  d.result = DrainRing(
      ring.data(), cons, prod, max_bytes,
      [&](std::span<const std::byte> run) {
        ++d.runs;
        d.run_bytes.insert(d.run_bytes.end(), run.begin(), run.end());
      },
      [&](const Record& rec) { d.records.push_back(rec); });
  return d;
}

TEST(RingGeometryTest, DataSizeAndUnconsumed) {
  EXPECT_EQ(RingDataSize(32), 32u * 4096 - 8);
  EXPECT_EQ(RingHighWater(4088), 2044u);
  EXPECT_EQ(RingUnconsumed(kDataSize, 0, 0), 0u);
  EXPECT_EQ(RingUnconsumed(kDataSize, 100, 140), 40u);
  EXPECT_EQ(RingUnconsumed(kDataSize, 2 * kDataSize - 8, 4), 12u);  // prod lapped to 0
}

TEST(RingDrainTest, EmptyRingDeliversNothing) {
  FakeRing ring;
  for (uint32_t p : {0u, 400u, kDataSize, 2 * kDataSize - 4}) {
    Drained d = Drain(ring, p, p);
    EXPECT_TRUE(d.result.ok());
    EXPECT_EQ(d.result.records, 0u);
    EXPECT_EQ(d.result.new_cons, p);
    EXPECT_EQ(d.runs, 0);
  }
}

TEST(RingDrainTest, DeliversRecordsAndTheirRawBytes) {
  FakeRing ring;
  uint32_t end = ring.Put(0, Rec(ev::kWake, 10, {0, 1}));
  end = ring.Put(end, Rec(ev::kBlock, 20, {0, 1}));
  Drained d = Drain(ring, 0, end);
  ASSERT_TRUE(d.result.ok());
  ASSERT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.records[1].event, ev::kBlock);
  EXPECT_EQ(d.result.new_cons, end);
  EXPECT_EQ(d.result.bytes_consumed, end);
  EXPECT_EQ(d.result.bytes_left, 0u);
  ASSERT_EQ(d.run_bytes.size(), end);
  EXPECT_EQ(std::memcmp(d.run_bytes.data(), ring.data().data(), end), 0);
}

TEST(RingDrainTest, SecondLapPointersMapOntoTheSameArea) {
  FakeRing ring;
  const uint32_t end = ring.Put(100, Rec(ev::kWake, 10, {0, 1}));
  Drained d = Drain(ring, kDataSize + 100, kDataSize + end);
  ASSERT_TRUE(d.result.ok());
  ASSERT_EQ(d.records.size(), 1u);
  EXPECT_EQ(d.result.new_cons, kDataSize + end);
}

TEST(RingDrainTest, WindowWrapsAcrossTheEndOfTheDataArea) {
  FakeRing ring;
  const uint32_t start = kDataSize - 60;
  uint32_t off = ring.Put(start, Rec(ev::kWake, 10, {0, 1}));  // 20 bytes
  off = ring.Put(off, Rec(ev::kBlock, 20, {0, 1}));            // 20 bytes
  ring.PadToEnd(off);                                          // one 20-byte WRAP record
  const uint32_t end = ring.Put(0, Rec(ev::kSleep, 30, {0, 1}));
  // cons in the first lap, prod in the second.
  Drained d = Drain(ring, start, kDataSize + end);
  ASSERT_TRUE(d.result.ok()) << RingAnomalyName(d.result.anomaly);
  ASSERT_EQ(d.records.size(), 4u);
  EXPECT_EQ(d.records.front().event, ev::kWake);
  EXPECT_EQ(d.records[2].event, ev::kWrapBuffer);
  EXPECT_EQ(d.records.back().event, ev::kSleep);
  EXPECT_EQ(d.runs, 2);
  EXPECT_EQ(d.result.new_cons, kDataSize + end);
  // The same window from the second lap back to the first: the pointers wrap at 2*data_size.
  Drained lap = Drain(ring, kDataSize + start, end);
  ASSERT_TRUE(lap.result.ok());
  EXPECT_EQ(lap.records.size(), d.records.size());
  EXPECT_EQ(lap.result.new_cons, end);
}

TEST(RingDrainTest, BudgetLimitsBytesButAlwaysMakesProgress) {
  FakeRing ring;
  uint32_t end = 0;
  for (int i = 0; i < 10; ++i) end = ring.Put(end, Rec(ev::kWake, 10 + i, {0, 1}));  // 20 each
  Drained first = Drain(ring, 0, end, /*max_bytes=*/50);
  ASSERT_TRUE(first.result.ok());
  EXPECT_EQ(first.records.size(), 2u) << "whole records only, within the budget";
  EXPECT_EQ(first.result.new_cons, 40u);
  EXPECT_EQ(first.result.bytes_left, end - 40);
  // A budget of zero still delivers one record.
  Drained second = Drain(ring, first.result.new_cons, end, /*max_bytes=*/0);
  EXPECT_EQ(second.records.size(), 2u) << "the budget is raised to one maximal record";
  EXPECT_GT(second.result.new_cons, first.result.new_cons);
  // Draining in small passes delivers everything exactly once.
  uint32_t cons = 0;
  size_t total = 0;
  for (int pass = 0; pass < 20 && cons != end; ++pass) {
    Drained d = Drain(ring, cons, end, 1);
    ASSERT_TRUE(d.result.ok());
    ASSERT_GT(d.records.size(), 0u);
    total += d.records.size();
    cons = d.result.new_cons;
  }
  EXPECT_EQ(cons, end);
  EXPECT_EQ(total, 10u);
}

TEST(RingDrainTest, BudgetStopsInsideAWrappedWindow) {
  FakeRing ring;
  const uint32_t start = kDataSize - 40;
  uint32_t off = ring.Put(start, Rec(ev::kWake, 10, {0, 1}));
  ring.Put(off, Rec(ev::kBlock, 20, {0, 1}));
  const uint32_t end = ring.Put(0, Rec(ev::kSleep, 30, {0, 1}));
  Drained d = Drain(ring, start, kDataSize + end, /*max_bytes=*/40);
  ASSERT_TRUE(d.result.ok());
  EXPECT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.result.new_cons, kDataSize) << "stopped exactly at the end of the data area";
  Drained rest = Drain(ring, d.result.new_cons, kDataSize + end);
  ASSERT_EQ(rest.records.size(), 1u);
  EXPECT_EQ(rest.records[0].event, ev::kSleep);
}

struct AnomalyCase {
  const char* name;
  uint32_t cons;
  uint32_t prod;
  RingAnomaly anomaly;
  uint32_t new_cons;
};

class RingAnomalyTest : public ::testing::TestWithParam<AnomalyCase> {};

TEST_P(RingAnomalyTest, IsReportedAndNeverFollowed) {
  FakeRing ring;
  uint32_t end = 0;
  for (int i = 0; i < 4; ++i) end = ring.Put(end, Rec(ev::kWake, i, {0, 1}));
  const AnomalyCase& c = GetParam();
  Drained d = Drain(ring, c.cons, c.prod);
  EXPECT_EQ(d.result.anomaly, c.anomaly) << RingAnomalyName(d.result.anomaly);
  EXPECT_EQ(d.result.new_cons, c.new_cons);
  EXPECT_EQ(d.records.size(), 0u);
  EXPECT_FALSE(d.result.ok());
  EXPECT_FALSE(RingAnomalyName(c.anomaly).empty());
}

INSTANTIATE_TEST_SUITE_P(
    BogusPointers, RingAnomalyTest,
    ::testing::Values(
        // A bad prod is the producer's: read nothing and keep cons, so a later good prod works.
        AnomalyCase{"ProdMisaligned", 0, 42, RingAnomaly::kProdMisaligned, 0},
        AnomalyCase{"ProdOutOfRange", 0, 2 * kDataSize, RingAnomaly::kProdOutOfRange, 0},
        AnomalyCase{"ProdHuge", 0, 0xfffffffc, RingAnomaly::kProdOutOfRange, 0},
        // A bad cons is ours to fix: resynchronise at prod.
        AnomalyCase{"ConsMisaligned", 2, 80, RingAnomaly::kConsMisaligned, 80},
        AnomalyCase{"ConsOutOfRange", 2 * kDataSize + 4, 80, RingAnomaly::kConsOutOfRange, 80},
        AnomalyCase{"Overfull", 0, kDataSize + 4, RingAnomaly::kOverfull, kDataSize + 4}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RingDrainTest, OverfullWindowCountsWhatItSkips) {
  FakeRing ring;
  Drained d = Drain(ring, 8, kDataSize + 16);
  EXPECT_EQ(d.result.anomaly, RingAnomaly::kOverfull);
  EXPECT_EQ(d.result.bytes_skipped, kDataSize + 8);
}

TEST(RingDrainTest, CorruptRecordIsRecoveredFromNotFollowed) {
  FakeRing ring;
  uint32_t end = ring.Put(0, Rec(ev::kWake, 1, {0, 1}));
  const uint32_t good = end;
  // A header claiming 40 bytes where only 8 remain before prod.
  Store32(ring.mutable_data().data() + end, MakeHeader(ev::kWake, 7, true));
  end += 8;
  Drained d = Drain(ring, 0, end);
  EXPECT_EQ(d.result.anomaly, RingAnomaly::kCorruptRecord);
  ASSERT_EQ(d.records.size(), 1u) << "records before the damage are delivered";
  EXPECT_EQ(d.result.bytes_consumed, good);
  EXPECT_EQ(d.result.bytes_skipped, 8u);
  EXPECT_EQ(d.result.new_cons, end) << "resynchronised at prod";
  EXPECT_EQ(d.run_bytes.size(), good);
}

TEST(RingDrainTest, RecordRunningPastTheEndOfTheDataAreaIsCorrupt) {
  FakeRing ring;
  const uint32_t start = kDataSize - 8;
  Store32(ring.mutable_data().data() + start, MakeHeader(ev::kWake, 2, true));  // 20 bytes
  const uint32_t end = ring.Put(0, Rec(ev::kBlock, 2, {0, 1}));
  Drained d = Drain(ring, start, kDataSize + end);
  EXPECT_EQ(d.result.anomaly, RingAnomaly::kCorruptRecord);
  EXPECT_EQ(d.records.size(), 0u) << "the second run is not read after a corrupt first one";
  EXPECT_EQ(d.result.new_cons, kDataSize + end);
}

TEST(RingCheckTest, ValidPointersPass) {
  EXPECT_EQ(CheckRingPointers(kDataSize, 0, 0), RingAnomaly::kNone);
  EXPECT_EQ(CheckRingPointers(kDataSize, 0, kDataSize), RingAnomaly::kNone) << "exactly full";
  EXPECT_EQ(CheckRingPointers(kDataSize, 2 * kDataSize - 4, 4), RingAnomaly::kNone);
}

}  // namespace
}  // namespace tracefmt

namespace tracefmt {
namespace {

struct CopyDrained {
  Drained drained;
  std::vector<std::byte> copy;  // the caller's private memory the window is copied to
  bool runs_in_copy = true;     // every run handed out lies in `copy`
};

CopyDrained DrainCopy(FakeRing& ring, uint32_t cons, uint32_t prod, uint32_t max_bytes,
                      bool scribble_while_walking = false) {
  CopyDrained c;
  c.copy.resize(kDataSize);
  c.drained.result = DrainRingCopy(
      ring.data(), cons, prod, max_bytes,
      [&](size_t bytes) {
        EXPECT_LE(bytes, c.copy.size());
        return c.copy.data();
      },
      [&](std::span<std::byte> run) {
        ++c.drained.runs;
        c.runs_in_copy &=
            run.data() >= c.copy.data() && run.data() + run.size() <= c.copy.data() + c.copy.size();
        c.drained.run_bytes.insert(c.drained.run_bytes.end(), run.begin(), run.end());
      },
      [&](const Record& rec) {
        c.drained.records.push_back(rec);
        // Another writer of the shared ring, in the middle of the walk: every size it holds now
        // is a record the size of the whole area.
        if (scribble_while_walking)
          for (size_t off = 0; off + 4 <= kDataSize; off += 4)
            Store32(ring.mutable_data().data() + off, MakeHeader(ev::kWake, 7, true));
      });
  return c;
}

// Lays out a window that wraps, with WRAP padding, and records of several sizes.
FakeRing WrappedRing(uint32_t& cons, uint32_t& prod) {
  FakeRing ring;
  uint32_t off = kDataSize - 200;
  cons = off;
  for (int i = 0; i < 7; ++i) off = ring.Put(off, Rec(ev::kWake, 100 + i, {1, 2, uint32_t(i)}));
  ring.PadToEnd(off);
  off = 0;
  for (int i = 0; i < 9; ++i) off = ring.Put(off, Rec(ev::kBlock, 200 + i, {uint32_t(i)}));
  prod = kDataSize + off;
  return ring;
}

TEST(RingDrainCopyTest, GivesWhatDrainRingGivesForEveryBudget) {
  uint32_t cons = 0;
  uint32_t prod = 0;
  FakeRing ring = WrappedRing(cons, prod);
  for (uint32_t budget : {0u, 1u, 20u, 40u, 41u, 100u, 160u, 196u, 200u, 230u, ~0u}) {
    const Drained in_place = Drain(ring, cons, prod, budget);
    const CopyDrained copied = DrainCopy(ring, cons, prod, budget);
    EXPECT_EQ(copied.drained.result.new_cons, in_place.result.new_cons) << budget;
    EXPECT_EQ(copied.drained.result.bytes_consumed, in_place.result.bytes_consumed) << budget;
    EXPECT_EQ(copied.drained.result.bytes_left, in_place.result.bytes_left) << budget;
    EXPECT_EQ(copied.drained.result.records, in_place.result.records) << budget;
    EXPECT_EQ(copied.drained.result.anomaly, in_place.result.anomaly) << budget;
    EXPECT_EQ(copied.drained.run_bytes, in_place.run_bytes) << budget;
    EXPECT_EQ(copied.drained.runs, in_place.runs) << budget;
    EXPECT_TRUE(copied.runs_in_copy);
  }
}

TEST(RingDrainCopyTest, CorruptRecordIsFoundInTheCopy) {
  FakeRing ring;
  uint32_t off = ring.Put(0, Rec(ev::kWake, 1, {1}));
  Store32(ring.mutable_data().data() + off, MakeHeader(ev::kWake, 7, true));  // 40 bytes claimed
  const CopyDrained copied = DrainCopy(ring, 0, off + 8, ~0u);
  EXPECT_EQ(copied.drained.result.anomaly, RingAnomaly::kCorruptRecord);
  EXPECT_EQ(copied.drained.result.records, 1u);
  EXPECT_EQ(copied.drained.result.new_cons, off + 8);
}

// The shared ring read once: what a writer does to it after the copy changes nothing that was
// checked — the runs handed out are the records walked, byte for byte.
TEST(RingDrainCopyTest, AWriterAfterTheCopyChangesNothingHandedOut) {
  FakeRing ring;
  uint32_t prod = 0;
  for (int i = 0; i < 12; ++i) prod = ring.Put(prod, Rec(ev::kWake, 100 + i, {1, uint32_t(i)}));
  const Drained before = Drain(ring, 0, prod);
  const CopyDrained copied = DrainCopy(ring, 0, prod, ~0u, /*scribble_while_walking=*/true);
  EXPECT_EQ(copied.drained.result.records, before.result.records);
  EXPECT_EQ(copied.drained.run_bytes, before.run_bytes);
  EXPECT_TRUE(copied.drained.result.ok());
}

}  // namespace
}  // namespace tracefmt
