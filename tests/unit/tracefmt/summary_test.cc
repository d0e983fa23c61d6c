#include "tracefmt/summary.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include "tracefmt/events.h"
#include "tracefmt/fields.h"
#include "tracefmt/testing/trace_builder.h"

namespace tracefmt {
namespace {

using testing::Rec;
using testing::RecNoTsc;
using testing::TraceBuilder;

TraceSummary Summarize(const std::vector<std::byte>& bytes) {
  TraceFileReader reader = TraceFileReader::FromBytes(bytes);
  return SummarizeTrace(reader);
}

TEST(SummaryTest, CountsRecordsClassesEventsAndLoss) {
  const uint32_t blocked = ev::kRunstateChange | 0u << 8 | 2u << 4;
  const uint32_t running = ev::kRunstateChange | 1u << 8 | 0u << 4;
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kLostRecords, 5, {100, 0, 1, 0}), Rec(blocked, 10, {1}),
              Rec(ev::kSwitchInfPrev, 11, {0, 1, 2})})
      .Chunk(1, {Rec(ev::kLostRecords, 7, {23, 0, 1, 0}), Rec(running, 20, {1}),
                 RecNoTsc(ev::kWrapBuffer)})
      .Chunk(0, {Rec(ev::kSwitchInfNext, 30, {0, 1, 2, 3}), Rec(ev::kPvHypercallV2, 31, {1})});
  const TraceSummary s = Summarize(t.bytes());
  EXPECT_EQ(s.file_bytes, t.bytes().size());
  EXPECT_EQ(s.records, 8u + 3u);
  EXPECT_EQ(s.cpu_change_records, 3u);
  EXPECT_EQ(s.wrap_records, 1u);
  EXPECT_EQ(s.lost_records_events, 2u);
  EXPECT_EQ(s.lost_records, 123u);
  EXPECT_EQ(s.runstate_changes, 2u);
  EXPECT_EQ(s.switch_infprev, 1u);
  EXPECT_EQ(s.switch_infnext, 1u);
  ASSERT_EQ(s.per_cpu.size(), 2u);
  EXPECT_EQ(s.per_cpu.at(0).records, 5u);
  EXPECT_EQ(s.per_cpu.at(0).chunks, 2u);
  EXPECT_EQ(s.per_cpu.at(0).first_tsc, 5u);
  EXPECT_EQ(s.per_cpu.at(0).last_tsc, 31u);
  EXPECT_EQ(s.per_cpu.at(0).tsc_span(), 26u);
  EXPECT_EQ(s.per_cpu.at(1).records, 3u);
  EXPECT_EQ(s.per_cpu.at(1).last_tsc, 20u) << "the wrap record has no TSC";
  EXPECT_EQ(s.per_class.at("GEN"), 3u + 2u + 1u);
  EXPECT_EQ(s.per_class.at("SCHED"), 4u);
  EXPECT_EQ(s.per_class.at("PV"), 1u);
  EXPECT_EQ(s.per_event.at(ev::kRunstateChange), 2u) << "runstate variants folded";
  EXPECT_TRUE(s.anomalies.empty());
}

TEST(SummaryTest, NotesTscGoingBackwardsOnACpu) {
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kWake, 50, {0, 1}), Rec(ev::kWake, 40, {0, 1})});
  EXPECT_EQ(Summarize(t.bytes()).per_cpu.at(0).tsc_backwards, 1u);
}

TEST(SummaryTest, DamageBecomesAnAnomalyAfterCountingWhatCameBefore) {
  TraceBuilder t;
  auto data = testing::EncodeAll({Rec(ev::kWake, 10, {0, 1})});
  testing::AppendWord(data, MakeHeader(ev::kWake, 2, true));
  t.Chunk(1, {Rec(ev::kWake, 5, {0, 1})}).RawChunk(0, data, 200);
  const TraceSummary s = Summarize(t.bytes());
  EXPECT_EQ(s.records, 2u + 2u);
  ASSERT_EQ(s.anomalies.size(), 2u);
  EXPECT_EQ(s.anomalies[0].offset, 32u) << "the chunk whose window runs past the end";
  EXPECT_EQ(s.anomalies[1].offset, 32u + 12u + 20u) << "the record cut short inside it";
}

// The acceptance figures published with the real captures (shared/data/*/README.md).
struct CaptureFigures {
  const char* file;
  uint64_t bytes, records, cpu_change, wrap, lost_events, lost, cpu0, cpu1, runstate, infprev,
      infnext;
};

class RealCaptureSummaryTest : public ::testing::TestWithParam<CaptureFigures> {};

TEST_P(RealCaptureSummaryTest, MatchesPublishedFigures) {
  const CaptureFigures& f = GetParam();
  const std::string path = testing::SharedCapture(f.file);
  SKIP_IF_MISSING(path);
  auto reader = TraceFileReader::Open(path);
  ASSERT_TRUE(reader.ok());
  const TraceSummary s = SummarizeTrace(*reader);
  EXPECT_EQ(s.file_bytes, f.bytes);
  EXPECT_EQ(s.records, f.records);
  EXPECT_EQ(s.cpu_change_records, f.cpu_change);
  EXPECT_EQ(s.wrap_records, f.wrap);
  EXPECT_EQ(s.lost_records_events, f.lost_events);
  EXPECT_EQ(s.lost_records, f.lost);
  ASSERT_EQ(s.per_cpu.size(), 2u);
  EXPECT_EQ(s.per_cpu.at(0).records, f.cpu0);
  EXPECT_EQ(s.per_cpu.at(1).records, f.cpu1);
  EXPECT_EQ(s.runstate_changes, f.runstate);
  EXPECT_EQ(s.switch_infprev, f.infprev);
  EXPECT_EQ(s.switch_infnext, f.infnext);
  for (const auto& [cpu, c] : s.per_cpu) {
    EXPECT_EQ(c.tsc_backwards, 0u) << "TSCs are monotonic per CPU";
    EXPECT_NEAR(static_cast<double>(c.tsc_span()), 12.9e9, 0.1e9) << "about 5 s per CPU";
  }
  EXPECT_TRUE(s.anomalies.empty());
}

INSTANTIATE_TEST_SUITE_P(
    SharedData, RealCaptureSummaryTest,
    ::testing::Values(CaptureFigures{"xen-4.17-qemu/trace-all.bin", 4542976, 216206, 108, 27, 0, 0,
                                     110252, 105846, 7975, 3194, 3194},
                      CaptureFigures{"xen-4.17-qemu/trace-sched.bin", 1105828, 48749, 97, 8, 0, 0,
                                     23239, 25413, 7173, 2872, 2872},
                      CaptureFigures{"xen-4.17-qemu-guests/trace-sched.bin", 1063076, 46496, 98, 8,
                                     2, 1668166, 23535, 22863, 5746, 2452, 2452}),
    [](const auto& info) {
      std::string name = info.param.file;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(FieldsTest, KnownLayoutsGiveNamedFieldsOthersNone) {
  const uint32_t event = ev::kRunstateChange | 1u << 8 | 0u << 4;
  RecordFields f = DecodeFields(Rec(event, 1, {3 | 2u << 16}));
  ASSERT_EQ(f.count, 4u);
  EXPECT_EQ(f.items[0].name, "domain");
  EXPECT_EQ(f.items[0].value, 2u);
  EXPECT_EQ(f.items[2].symbol, "runnable");
  EXPECT_EQ(f.items[3].symbol, "running");
  RecordFields next = DecodeFields(Rec(ev::kSwitchInfNext, 1, {0, 1, 2, ev::kNoTimeLimit}));
  ASSERT_EQ(next.count, 4u);
  EXPECT_EQ(next.items[3].symbol, "none");
  RecordFields call = DecodeFields(Rec(ev::kPvHypercallV2, 1, {1 | 1u << 20 | 1u << 22, 5, 6}));
  ASSERT_EQ(call.count, 3u);
  EXPECT_EQ(call.items[2].name, "arg1");
  EXPECT_EQ(call.items[2].value, 6u);
  EXPECT_EQ(DecodeFields(Rec(ev::kCsched2Tick, 1)).count, 0u);
  EXPECT_EQ(DecodeFields(Rec(ev::kSwitchInfPrev, 1, {1})).count, 0u) << "too short";
}

}  // namespace
}  // namespace tracefmt
