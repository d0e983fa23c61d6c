#include "tracefmt/merge.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>
#include <span>
#include <string>
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

TEST(MergedTraceReaderTest, NoiseFromByteZeroIsReportedAtOffsetZero) {
  // No chunk header parses, so no CPU cursor exists to meet the damage: discovery reports it.
  const std::string text = "not a trace at all....";
  const auto noise = std::as_bytes(std::span(text.data(), text.size()));
  std::optional<Error> error;
  EXPECT_TRUE(MergeTags({noise.begin(), noise.end()}, &error).empty());
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, ErrorCode::kCorrupt);
  EXPECT_EQ(error->offset, 0u);
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

// --- The zero-copy path (ForEach) against Next and against a plain reference merge ---------------

// The order the merge promises, computed the slow and obvious way: every CPU's records decoded in
// file order (records without a TSC take their CPU's last one), then at each step the oldest head,
// the lower CPU on a tie. The file's CPUs must all appear within its first chunks.
std::vector<MergedRecord> ReferenceMerge(const std::vector<std::byte>& bytes) {
  struct Stream {
    std::vector<MergedRecord> records;
    size_t next = 0;
    uint64_t last_tsc = 0;
  };
  std::map<uint32_t, Stream> streams;
  TraceFileReader reader = TraceFileReader::FromBytes(bytes);
  Chunk chunk;
  while (reader.Next(chunk)) {
    Stream& s = streams[chunk.cpu];
    RecordCursor cursor(chunk.bytes);
    MergedRecord m;
    m.cpu = chunk.cpu;
    for (size_t at = 0; cursor.Next(m.rec); at = cursor.offset()) {
      if (m.rec.has_tsc) s.last_tsc = m.rec.tsc;
      m.tsc = s.last_tsc;
      m.file_offset = chunk.data_offset() + at;
      s.records.push_back(m);
    }
  }
  std::vector<MergedRecord> out;
  for (;;) {
    Stream* best = nullptr;
    for (auto& [cpu, s] : streams) {  // ascending CPU: a strict < keeps the lower CPU on ties
      if (s.next == s.records.size()) continue;
      if (best == nullptr || s.records[s.next].tsc < best->records[best->next].tsc) best = &s;
    }
    if (best == nullptr) return out;
    out.push_back(best->records[best->next++]);
  }
}

std::vector<MergedRecord> ViaNext(const std::vector<std::byte>& bytes,
                                  std::optional<Error>* error) {
  TraceFileReader reader = TraceFileReader::FromBytes(bytes);
  MergedTraceReader merged(reader);
  std::vector<MergedRecord> out;
  MergedRecord m;
  while (merged.Next(m)) out.push_back(m);
  *error = merged.error();
  return out;
}

std::vector<MergedRecord> ViaForEach(const std::vector<std::byte>& bytes,
                                     std::optional<Error>* error) {
  TraceFileReader reader = TraceFileReader::FromBytes(bytes);
  MergedTraceReader merged(reader);
  std::vector<MergedRecord> out;
  merged.ForEach([&](uint32_t cpu, uint64_t tsc, RecordRef rec) {
    MergedRecord& m = out.emplace_back();
    m.cpu = cpu;
    m.tsc = tsc;
    m.file_offset = static_cast<uint64_t>(rec.p - reader.bytes().data());
    m.rec = rec.Decode();
  });
  *error = merged.error();
  return out;
}

// Same records, same order, same merged TSCs and offsets, same error, by all three ways.
void ExpectSameMerge(const std::vector<std::byte>& bytes, const std::string& what) {
  std::optional<Error> next_error;
  std::optional<Error> each_error;
  const std::vector<MergedRecord> reference = ReferenceMerge(bytes);
  const std::vector<MergedRecord> next = ViaNext(bytes, &next_error);
  const std::vector<MergedRecord> each = ViaForEach(bytes, &each_error);
  ASSERT_EQ(next.size(), reference.size()) << what;
  ASSERT_EQ(each.size(), reference.size()) << what;
  for (size_t i = 0; i < reference.size(); ++i) {
    const MergedRecord& r = reference[i];
    for (const MergedRecord* m : {&next[i], &each[i]}) {
      ASSERT_TRUE(m->cpu == r.cpu && m->tsc == r.tsc && m->file_offset == r.file_offset &&
                  m->rec == r.rec)
          << what << ": record " << i << " differs (" << (m == &next[i] ? "Next" : "ForEach")
          << "): cpu " << m->cpu << " tsc " << m->tsc << " offset " << m->file_offset
          << ", expected cpu " << r.cpu << " tsc " << r.tsc << " offset " << r.file_offset;
    }
  }
  ASSERT_EQ(next_error.has_value(), each_error.has_value()) << what;
  if (next_error) {
    EXPECT_EQ(next_error->code, each_error->code) << what;
    EXPECT_EQ(next_error->offset, each_error->offset) << what;
  }
}

// A random capture: up to 4 CPUs in random chunk order, TSC steps of 0 (ties within and across
// CPUs), records without a TSC, every extra-word count; optionally a record cut short inside a
// chunk, and the file cut at a random byte.
std::vector<std::byte> RandomCapture(std::mt19937& rng) {
  const uint32_t cpus = 1 + rng() % 4;
  std::vector<uint64_t> tsc(cpus, 1000);
  TraceBuilder t;
  const uint32_t chunks = 1 + rng() % 40;
  for (uint32_t n = 0; n < chunks; ++n) {
    const uint32_t cpu = n < cpus ? n : rng() % cpus;  // every CPU early, then any order
    std::vector<std::byte> data;
    const uint32_t records = rng() % 30;
    for (uint32_t i = 0; i < records; ++i) {
      tsc[cpu] += rng() % 3 == 0 ? 0 : rng() % 50;
      Record r;
      r.event = ev::kWake + rng() % 4;
      r.has_tsc = rng() % 10 != 0;
      r.tsc = r.has_tsc ? tsc[cpu] : 0;
      r.extra_words = static_cast<uint8_t>(rng() % 8);
      for (uint32_t w = 0; w < r.extra_words; ++w) r.extra[w] = static_cast<uint32_t>(rng());
      testing::AppendRecord(data, r);
    }
    if (rng() % 20 == 0) testing::AppendWord(data, MakeHeader(ev::kWake, 5, true));  // cut short
    t.RawChunk(cpu * 2, data, static_cast<uint32_t>(data.size()));  // CPU ids with gaps
  }
  if (rng() % 4 == 0) t.Truncate(rng() % (t.bytes().size() + 1));
  return t.bytes();
}

TEST(MergedTraceReaderFastPathTest, RandomCapturesMergeAlikeByEveryPath) {
  std::mt19937 rng(20261122);
  for (int i = 0; i < 400; ++i) {
    ExpectSameMerge(RandomCapture(rng), "random capture " + std::to_string(i));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(MergedTraceReaderFastPathTest, TiesRecordsWithoutTscAndDamageAlikeByEveryPath) {
  TraceBuilder ties;
  ties.Chunk(2, {Rec(ev::kWake, 10, {1}), Rec(ev::kWake, 10, {2})})
      .Chunk(0, {Rec(ev::kWake, 10, {3})})
      .Chunk(1, {Rec(ev::kWake, 10, {4}), Rec(ev::kWake, 11, {5})});
  ExpectSameMerge(ties.bytes(), "ties");
  TraceBuilder no_tsc;
  no_tsc.Chunk(0, {RecNoTsc(ev::kWake, {0}), Rec(ev::kWake, 10, {1}), RecNoTsc(ev::kWake, {2})})
      .Chunk(1, {Rec(ev::kWake, 10, {4}), RecNoTsc(ev::kWake, {5})})
      .Chunk(0, {RecNoTsc(ev::kWake, {6}), Rec(ev::kWake, 12, {7})});
  ExpectSameMerge(no_tsc.bytes(), "records without a TSC");
  TraceBuilder truncated;
  truncated.Chunk(0, {Rec(ev::kWake, 10, {1})})
      .Chunk(1, {Rec(ev::kWake, 20, {2})})
      .Chunk(0, {Rec(ev::kWake, 30, {3}), Rec(ev::kWake, 40, {4})});
  for (size_t cut = 0; cut <= truncated.bytes().size(); ++cut) {
    TraceBuilder t = truncated;
    ExpectSameMerge(t.Truncate(cut).bytes(), "truncated by " + std::to_string(cut));
  }
  ExpectSameMerge({}, "empty");
}

TEST(MergedTraceReaderFastPathTest, CpuAppearingLateJoinsAlikeByBothPaths) {
  TraceBuilder t;
  for (uint32_t i = 0; i < 5000; ++i) t.Chunk(0, {Rec(ev::kWake, 100 + i, {i})});
  t.Chunk(1, {Rec(ev::kWake, 5100, {7}), RecNoTsc(ev::kWake, {8})});
  std::optional<Error> next_error;
  std::optional<Error> each_error;
  const std::vector<MergedRecord> next = ViaNext(t.bytes(), &next_error);
  const std::vector<MergedRecord> each = ViaForEach(t.bytes(), &each_error);
  ASSERT_EQ(next.size(), 5002u);
  ASSERT_EQ(each.size(), next.size());
  for (size_t i = 0; i < next.size(); ++i) {
    ASSERT_TRUE(each[i].cpu == next[i].cpu && each[i].tsc == next[i].tsc &&
                each[i].rec == next[i].rec)
        << i;
  }
  EXPECT_FALSE(next_error);
  EXPECT_FALSE(each_error);
}

TEST(MergedTraceReaderFastPathTest, RealCapturesMergeAlikeByEveryPath) {
  for (const std::string& name : testing::RealCaptures()) {
    const std::string path = testing::SharedCapture(name);
    SKIP_IF_MISSING(path);
    ExpectSameMerge(testing::ReadFileBytes(path), name);
  }
}

TEST(MergedTraceReaderFastPathTest, NextAndForEachMayBeMixed) {
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kWake, 10, {1}), Rec(ev::kWake, 40, {2})})
      .Chunk(1, {Rec(ev::kWake, 20, {3}), Rec(ev::kWake, 30, {4})});
  TraceFileReader reader = TraceFileReader::FromBytes(t.bytes());
  MergedTraceReader merged(reader);
  MergedRecord m;
  ASSERT_TRUE(merged.Next(m));
  ASSERT_TRUE(merged.Next(m));
  EXPECT_EQ(m.rec.extra[0], 3u);
  std::vector<uint32_t> rest;
  merged.ForEach([&](uint32_t, uint64_t, RecordRef rec) { rest.push_back(rec.Extra(0)); });
  EXPECT_EQ(rest, (std::vector<uint32_t>{4, 2}));
  EXPECT_FALSE(merged.Next(m));
}

// --- ForEachRun: runs of one CPU's records taken at once ---

// Takes the head of `offer` and up to `extra` whole records after it, as a consumer may: it stops
// at a record cut short and before one whose TSC is past the limit; `while_leading`, also before
// the first whose merged TSC is not below the lead (what a consumer that takes records only in
// merged order may take). `on_record(rec, is_head, merged_tsc)` sees each record taken.
template <typename OnRecord>
RunTaken TakeUpTo(const RunOffer& offer, uint32_t extra, bool while_leading, OnRecord&& on_record) {
  const std::span<const std::byte> bytes = offer.bytes;
  RunTaken taken{.last_tsc = offer.tsc};
  for (uint32_t n = 0; n <= extra && bytes.size() - taken.bytes >= kMinRecordBytes; ++n) {
    const RecordRef rec{Load32(bytes.data() + taken.bytes), bytes.data() + taken.bytes};
    if (bytes.size() - taken.bytes < rec.SizeBytes()) break;  // cut short: the merge reports it
    const bool head = n == 0;
    const uint64_t tsc = head ? offer.tsc : rec.has_tsc() ? rec.Tsc() : taken.last_tsc;
    if (!head && (tsc > offer.limit || (while_leading && tsc >= offer.lead))) break;
    on_record(rec, head, tsc);
    taken.bytes += rec.SizeBytes();
    ++taken.records;
    taken.last_tsc = tsc;
  }
  if (taken.bytes == 0) ADD_FAILURE() << "the head was not a whole record";
  return taken;
}

// RunCollector's `extra` that takes records while they lead the merge.
constexpr int kWhileLeading = -2;

// Takes the head and up to `extra` whole records after it (a random number per call when `extra`
// is -1; while they lead when kWhileLeading), recording each with its CPU, offset and merged
// TSC.
struct RunCollector {
  explicit RunCollector(const TraceFileReader& r, int take_extra) : reader(r), extra(take_extra) {}
  const TraceFileReader& reader;
  std::mt19937 rng{7};
  int extra = 0;
  std::vector<MergedRecord> records;  // in delivery order
  std::vector<bool> is_head;
  size_t offers = 0;

  RunTaken Take(const RunOffer& offer) {
    ++offers;
    const bool while_leading = extra == kWhileLeading;
    const uint32_t wanted = while_leading ? ~uint32_t{0}
                            : extra >= 0  ? static_cast<uint32_t>(extra)
                                          : static_cast<uint32_t>(rng() % 6);
    return TakeUpTo(offer, wanted, while_leading,
                    [&](const RecordRef& rec, bool head, uint64_t tsc) {
                      MergedRecord& m = records.emplace_back();
                      m.cpu = offer.cpu;
                      m.tsc = tsc;
                      m.file_offset = static_cast<uint64_t>(rec.p - reader.bytes().data());
                      m.rec = rec.Decode();
                      is_head.push_back(head);
                    });
  }
};

// Returns how many records were taken while leading after a head, beyond the heads offered.
size_t ExpectSameMergeByRuns(const std::vector<std::byte>& bytes, const std::string& what) {
  std::optional<Error> next_error;
  const std::vector<MergedRecord> next = ViaNext(bytes, &next_error);
  size_t taken_while_leading = 0;
  for (int extra : {0, -1, kWhileLeading}) {
    TraceFileReader reader = TraceFileReader::FromBytes(bytes);
    MergedTraceReader merged(reader);
    RunCollector runs(reader, extra);
    merged.ForEachRun(runs);
    EXPECT_EQ(runs.records.size(), next.size()) << what << ", extra " << extra;
    if (runs.records.size() != next.size()) return 0;
    EXPECT_EQ(merged.error().has_value(), next_error.has_value()) << what;
    if (next_error) {
      EXPECT_EQ(merged.error()->code, next_error->code) << what;
      EXPECT_EQ(merged.error()->offset, next_error->offset) << what;
    }
    // One record per step, or records taken only while they lead: exactly ForEach's order and
    // TSCs.
    if (extra == 0 || extra == kWhileLeading) {
      for (size_t i = 0; i < next.size(); ++i) {
        EXPECT_TRUE(runs.records[i].file_offset == next[i].file_offset &&
                    runs.records[i].tsc == next[i].tsc && runs.records[i].rec == next[i].rec)
            << what << ", extra " << extra << ": record " << i;
        if (::testing::Test::HasFailure()) return 0;
      }
      if (extra == kWhileLeading) taken_while_leading = runs.records.size() - runs.offers;
      continue;
    }
    // Runs: every record once, each CPU's in its own order, every head at its merged TSC.
    std::map<uint64_t, const MergedRecord*> by_offset;
    for (const MergedRecord& m : next) by_offset[m.file_offset] = &m;
    std::map<uint32_t, uint64_t> last_offset;
    for (size_t i = 0; i < runs.records.size(); ++i) {
      const MergedRecord& got = runs.records[i];
      auto it = by_offset.find(got.file_offset);
      EXPECT_NE(it, by_offset.end()) << what << ": record " << i << " delivered twice or unknown";
      if (it == by_offset.end()) return 0;
      EXPECT_TRUE(got.cpu == it->second->cpu && got.rec == it->second->rec) << what;
      if (runs.is_head[i]) {
        EXPECT_EQ(got.tsc, it->second->tsc) << what << ": head " << i;
      }
      auto [last, fresh] = last_offset.try_emplace(got.cpu, got.file_offset);
      if (!fresh) {
        EXPECT_LT(last->second, got.file_offset) << what << ": CPU " << got.cpu << " reordered";
        last->second = got.file_offset;
      }
      if (::testing::Test::HasFailure()) return 0;
      by_offset.erase(it);
    }
  }
  return taken_while_leading;
}

TEST(MergedTraceReaderRunsTest, RandomCapturesDeliverEveryRecordOnceInEachCpusOrder) {
  std::mt19937 rng(20261123);
  size_t taken_while_leading = 0;
  for (int i = 0; i < 400; ++i) {
    taken_while_leading +=
        ExpectSameMergeByRuns(RandomCapture(rng), "random capture " + std::to_string(i));
    if (::testing::Test::HasFailure()) return;
  }
  // The lead lets a consumer go on past the head, not only stop at it.
  EXPECT_GT(taken_while_leading, 1000u);
}

TEST(MergedTraceReaderRunsTest, RealCapturesDeliverEveryRecordOnceInEachCpusOrder) {
  for (const std::string& name : testing::RealCaptures()) {
    const std::string path = testing::SharedCapture(name);
    SKIP_IF_MISSING(path);
    EXPECT_GT(ExpectSameMergeByRuns(testing::ReadFileBytes(path), name), 0u) << name;
  }
}

// EmitRunsUpTo against EmitUpTo: heads in merged order, every record at or below the watermark
// once and in its CPU's order, none above it, over several pushes and emissions; taken only
// while they lead, exactly EmitUpTo's order.
TEST(LiveMergerTest, RunsUpToTheWatermarkTakeEveryRecordOnceAndNoneBeyond) {
  std::mt19937 rng(99);
  size_t taken_while_leading = 0;
  for (int round = 0; round < 200; ++round) {
    LiveMerger by_record;
    LiveMerger by_run;
    LiveMerger by_lead;
    std::vector<uint64_t> tsc(3, 100);
    std::vector<std::pair<uint32_t, uint32_t>> expected;  // (cpu, id) from EmitUpTo
    std::vector<std::pair<uint32_t, uint32_t>> got;       // from EmitRunsUpTo
    std::vector<std::pair<uint32_t, uint32_t>> led;       // the same, taken while leading
    uint32_t id = 0;
    for (int step = 0; step < 6; ++step) {
      for (uint32_t cpu = 0; cpu < 3; ++cpu) {
        for (uint32_t k = rng() % 20; k > 0; --k) {
          tsc[cpu] += rng() % 3 == 0 ? 0 : rng() % 40;
          Record r =
              rng() % 8 == 0 ? RecNoTsc(ev::kWake, {id++}) : Rec(ev::kWake, tsc[cpu], {id++});
          by_record.Push(cpu, r);
          by_run.Push(cpu, r);
          by_lead.Push(cpu, r);
        }
      }
      const uint64_t watermark =
          step == 5 ? ~uint64_t{0} : *std::min_element(tsc.begin(), tsc.end());
      by_record.EmitUpTo(
          watermark, [&](const MergedRecord& m) { expected.emplace_back(m.cpu, m.rec.extra[0]); });
      struct Runs {
        std::mt19937& rng;
        std::vector<std::pair<uint32_t, uint32_t>>& out;
        RunTaken Take(const RunOffer& offer) {
          return TakeUpTo(offer, static_cast<uint32_t>(rng() % 5), false,
                          [&](const RecordRef& rec, bool, uint64_t) {
                            out.emplace_back(offer.cpu, rec.Extra(0));
                          });
        }
      } runs{rng, got};
      by_run.EmitRunsUpTo(watermark, runs);
      ASSERT_EQ(by_run.pending(), by_record.pending()) << "round " << round << " step " << step;
      ASSERT_EQ(got.size(), expected.size());
      struct Leading {
        std::vector<std::pair<uint32_t, uint32_t>>& out;
        size_t& beyond_head;
        RunTaken Take(const RunOffer& offer) {
          const RunTaken taken =
              TakeUpTo(offer, ~uint32_t{0}, true, [&](const RecordRef& rec, bool, uint64_t) {
                out.emplace_back(offer.cpu, rec.Extra(0));
              });
          beyond_head += taken.records - 1;
          return taken;
        }
      } leading{led, taken_while_leading};
      by_lead.EmitRunsUpTo(watermark, leading);
      ASSERT_EQ(by_lead.pending(), by_record.pending()) << "round " << round << " step " << step;
      ASSERT_EQ(led, expected) << "round " << round << " step " << step;
    }
    // Each CPU's records in its order: ids grow along a CPU.
    auto per_cpu = [](const std::vector<std::pair<uint32_t, uint32_t>>& v) {
      std::map<uint32_t, std::vector<uint32_t>> m;
      for (auto [cpu, rec_id] : v) m[cpu].push_back(rec_id);
      return m;
    };
    ASSERT_EQ(per_cpu(got), per_cpu(expected)) << "round " << round;
  }
  EXPECT_GT(taken_while_leading, 1000u);
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

// The daemon's path: whole ring runs pushed as bytes, released in batches of MergedRef that
// point into the merger's buffers. More records than one batch, ties, records without a TSC and
// a tail held back by the watermark across pushes (the buffer compacts under it).
TEST(LiveMergerTest, RunsPushedAsBytesComeBackInBatchesInOrder) {
  auto run_of = [](const std::vector<Record>& recs) {
    std::vector<std::byte> bytes;
    for (const Record& r : recs) {
      std::array<std::byte, kMaxRecordBytes> b;
      const size_t n = EncodeRecord(r, b);
      bytes.insert(bytes.end(), b.begin(), b.begin() + static_cast<ptrdiff_t>(n));
    }
    return bytes;
  };
  LiveMerger live;
  Tags out;
  size_t batches = 0;
  auto sink = [&](std::span<const MergedRef> batch) {
    ++batches;
    EXPECT_LE(batch.size(), LiveMerger::kBatchRecords);
    for (const MergedRef& m : batch) out.emplace_back(m.cpu, m.rec().Extra(0));
  };
  uint32_t tag = 0;
  Tags want;
  // Round k: CPU 0 at TSC 10k (and a record without one), CPU 1 at TSC 10k too (a tie: CPU 0
  // first), so 3 records a round interleave.
  auto push_rounds = [&](uint64_t from, uint64_t to) {
    std::vector<Record> cpu0, cpu1;
    for (uint64_t k = from; k < to; ++k) {
      cpu0.push_back(Rec(ev::kWake, 10 * k, {tag}));
      cpu0.push_back(RecNoTsc(ev::kWake, {tag + 1}));
      cpu1.push_back(Rec(ev::kWake, 10 * k, {tag + 2}));
      want.insert(want.end(), {{0, tag}, {0, tag + 1}, {1, tag + 2}});
      tag += 3;
    }
    const std::vector<std::byte> b0 = run_of(cpu0);
    const std::vector<std::byte> b1 = run_of(cpu1);
    live.PushRecords(0, b0, cpu0.size(), 10 * (to - 1));
    live.PushRecords(1, b1, cpu1.size(), 10 * (to - 1));
  };
  push_rounds(1, 201);
  EXPECT_EQ(live.pending(), 600u);
  EXPECT_EQ(live.last_tsc(1), 2000u);
  // Up to round 150: 450 records in two batches; rounds 151–200 stay held.
  EXPECT_EQ(live.EmitBatchesUpTo(1500, sink), 450u);
  EXPECT_EQ(batches, 2u);
  EXPECT_EQ(live.pending(), 150u);
  push_rounds(201, 301);
  EXPECT_EQ(live.EmitBatchesUpTo(~uint64_t{0}, sink), 450u);
  EXPECT_EQ(out, want);
  EXPECT_EQ(live.pending(), 0u);
  EXPECT_GT(live.buffer_bytes(), 0u);
}

}  // namespace
}  // namespace tracefmt
