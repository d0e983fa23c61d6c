#include "tracefmt/merge.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "test_util.h"
#include "tracefmt/events.h"
#include "tracefmt/summary.h"
#include "tracefmt/testing/trace_builder.h"

namespace tracefmt {
namespace {

using testing::Rec;
using testing::RecNoTsc;
using testing::TraceBuilder;

// (cpu, first data word) of every merged record: the tests tag records with a data word.
std::vector<std::pair<uint32_t, uint32_t>> MergeTags(const std::vector<std::byte>& bytes,
                                                     std::optional<Error>* error = nullptr) {
  TraceFileReader reader = TraceFileReader::FromBytes(bytes);
  MergedTraceReader merged(reader);
  std::vector<std::pair<uint32_t, uint32_t>> tags;
  MergedRecord m;
  while (merged.Next(m)) tags.emplace_back(m.cpu, m.rec.extra[0]);
  if (error != nullptr) *error = merged.error();
  return tags;
}

using Tags = std::vector<std::pair<uint32_t, uint32_t>>;

TEST(MergedTraceReaderTest, OrdersAcrossCpusByTsc) {
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kWake, 10, {1}), Rec(ev::kWake, 40, {2})})
      .Chunk(1, {Rec(ev::kWake, 20, {3}), Rec(ev::kWake, 30, {4})})
      .Chunk(0, {Rec(ev::kWake, 50, {5})})
      .Chunk(1, {Rec(ev::kWake, 45, {6})});
  EXPECT_EQ(MergeTags(t.bytes()), (Tags{{0, 1}, {1, 3}, {1, 4}, {0, 2}, {1, 6}, {0, 5}}));
}

TEST(MergedTraceReaderTest, TiesGoToTheLowerCpu) {
  TraceBuilder t;
  t.Chunk(2, {Rec(ev::kWake, 10, {1}), Rec(ev::kWake, 10, {2})})
      .Chunk(0, {Rec(ev::kWake, 10, {3})})
      .Chunk(1, {Rec(ev::kWake, 10, {4}), Rec(ev::kWake, 11, {5})});
  EXPECT_EQ(MergeTags(t.bytes()), (Tags{{0, 3}, {1, 4}, {2, 1}, {2, 2}, {1, 5}}));
}

TEST(MergedTraceReaderTest, RecordsWithoutTscStayAfterTheirPredecessor) {
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kWake, 10, {1}), RecNoTsc(ev::kWake, {2}), Rec(ev::kWake, 30, {3})})
      .Chunk(1, {Rec(ev::kWake, 20, {4})});
  TraceFileReader reader = TraceFileReader::FromBytes(t.bytes());
  MergedTraceReader merged(reader);
  std::vector<MergedRecord> out;
  MergedRecord m;
  while (merged.Next(m)) out.push_back(m);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[1].rec.extra[0], 2u);
  EXPECT_FALSE(out[1].rec.has_tsc);
  EXPECT_EQ(out[1].tsc, 10u) << "inherits its CPU's last TSC";
  EXPECT_EQ(out[2].rec.extra[0], 4u);
}

TEST(MergedTraceReaderTest, ReportsFileOffsetsOfRecords) {
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kWake, 10, {1}), Rec(ev::kWake, 30, {2})});
  TraceFileReader reader = TraceFileReader::FromBytes(t.bytes());
  MergedTraceReader merged(reader);
  MergedRecord m;
  ASSERT_TRUE(merged.Next(m));
  EXPECT_EQ(m.file_offset, 12u);
  ASSERT_TRUE(merged.Next(m));
  EXPECT_EQ(m.file_offset, 12u + 16u);
}

TEST(MergedTraceReaderTest, CpuAppearingLateStillJoins) {
  // More chunks of CPU 0 than the merge looks at up front, then CPU 1 appears.
  TraceBuilder t;
  constexpr uint32_t kChunks = 5000;
  for (uint32_t i = 0; i < kChunks; ++i) t.Chunk(0, {Rec(ev::kWake, 100 + i, {i})});
  t.Chunk(1, {Rec(ev::kWake, 100 + kChunks, {7}), Rec(ev::kWake, 101 + kChunks, {8})});
  TraceFileReader reader = TraceFileReader::FromBytes(t.bytes());
  MergedTraceReader merged(reader);
  MergedRecord m;
  uint64_t count = 0;
  uint64_t last_tsc = 0;
  Tags cpu1;
  while (merged.Next(m)) {
    ++count;
    EXPECT_GE(m.tsc, last_tsc);
    last_tsc = m.tsc;
    if (m.cpu == 1) cpu1.emplace_back(m.cpu, m.rec.extra[0]);
  }
  EXPECT_FALSE(merged.error());
  EXPECT_EQ(count, kChunks + 2);
  EXPECT_EQ(cpu1, (Tags{{1, 7}, {1, 8}}));
  EXPECT_EQ(merged.cpus(), (std::vector<uint32_t>{0, 1}));
}

TEST(MergedTraceReaderTest, TruncatedFileDeliversEverythingBeforeTheDamage) {
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kWake, 10, {1})})
      .Chunk(1, {Rec(ev::kWake, 20, {2})})
      .Chunk(0, {Rec(ev::kWake, 30, {3}), Rec(ev::kWake, 40, {4})})
      .Truncate(6);  // the last record loses 6 of its 20 bytes
  std::optional<Error> error;
  EXPECT_EQ(MergeTags(t.bytes(), &error), (Tags{{0, 1}, {1, 2}, {0, 3}}));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, ErrorCode::kTruncated);
  EXPECT_EQ(error->offset, 12u + 16u + 12u + 16u) << "header of the chunk cut short";
}

TEST(MergedTraceReaderTest, RecordCutShortInsideAChunkIsReported) {
  TraceBuilder t;
  auto data = testing::EncodeAll({Rec(ev::kWake, 10, {1})});
  testing::AppendWord(data, MakeHeader(ev::kWake, 3, true));  // claims 24 bytes, has 4
  t.RawChunk(0, data, static_cast<uint32_t>(data.size())).Chunk(1, {Rec(ev::kWake, 20, {2})});
  std::optional<Error> error;
  EXPECT_EQ(MergeTags(t.bytes(), &error), (Tags{{0, 1}, {1, 2}}));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->offset, 12u + 16u);
}

TEST(MergedTraceReaderTest, EmptyInputIsReported) {
  std::optional<Error> error;
  EXPECT_TRUE(MergeTags({}, &error).empty());
  EXPECT_TRUE(error);
}

TEST(MergedTraceReaderTest, RealCapturesMergeCompletelyAndNeverGoBackwards) {
  for (const std::string& name : testing::RealCaptures()) {
    const std::string path = testing::SharedCapture(name);
    SKIP_IF_MISSING(path);
    auto reader = TraceFileReader::Open(path);
    ASSERT_TRUE(reader.ok());
    const TraceSummary summary = SummarizeTrace(*reader);
    reader->Rewind();
    MergedTraceReader merged(*reader);
    MergedRecord m;
    uint64_t count = 0;
    uint64_t last = 0;
    uint64_t backwards = 0;
    while (merged.Next(m)) {
      ++count;
      if (m.tsc < last) ++backwards;
      last = m.tsc;
    }
    EXPECT_FALSE(merged.error()) << name;
    EXPECT_EQ(count, summary.records - summary.cpu_change_records) << name;
    EXPECT_EQ(backwards, 0u) << name;
  }
}

TEST(LiveMergerTest, EmitsUpToTheWatermarkInOrder) {
  LiveMerger live;
  live.Push(1, Rec(ev::kWake, 15, {1}));
  live.Push(0, Rec(ev::kWake, 10, {2}));
  live.Push(0, Rec(ev::kWake, 20, {3}));
  live.Push(1, Rec(ev::kWake, 20, {4}));
  live.Push(0, RecNoTsc(ev::kWake, {5}));
  EXPECT_EQ(live.pending(), 5u);
  EXPECT_EQ(live.last_tsc(0), 20u);
  Tags out;
  auto sink = [&](const MergedRecord& m) { out.emplace_back(m.cpu, m.rec.extra[0]); };
  EXPECT_EQ(live.EmitUpTo(15, sink), 2u);
  EXPECT_EQ(out, (Tags{{0, 2}, {1, 1}}));
  EXPECT_EQ(live.EmitAll(sink), 3u);
  EXPECT_EQ(out, (Tags{{0, 2}, {1, 1}, {0, 3}, {0, 5}, {1, 4}}));
  EXPECT_EQ(live.pending(), 0u);
}

}  // namespace
}  // namespace tracefmt
