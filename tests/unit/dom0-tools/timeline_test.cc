// Tests of the timeline export: the JSON is parsed with nlohmann_json and its structure checked —
// on small hand-made traces whose answer is known, and on the real captures in ../shared/data,
// where every slice is compared with the runstate changes read independently from the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli/exit_status.h"
#include "timeline/chunk_stream.h"
#include "timeline/convert.h"
#include "timeline/timeline_builder.h"
#include "timeline/timeline_main.h"
#include "timeline/trace_event_writer.h"
#include "tracefmt/clock.h"
#include "tracefmt/events.h"
#include "tracefmt/merge.h"
#include "tracefmt/trace_file.h"

namespace xenbake::timeline {
namespace {

using tracefmt::Runstate;
using Json = nlohmann::json;

constexpr uint64_t kGhzKhz = 1'000'000;      // 1 tick = 1 ns: times in tests read directly
constexpr uint64_t kCaptureKhz = 2'596'120;  // the real captures' xc_physinfo cpu_khz

TimelineConfig CaptureConfig(std::map<uint32_t, std::string> names = {}) {
  return {.cpu_khz = kCaptureKhz, .domain_names = std::move(names)};
}

std::string SharedData(const std::string& relative) {
  return std::string(XENBAKED_SHARED_DATA) + "/" + relative;
}

// --- Records ---------------------------------------------------------------------------------

tracefmt::Record RunstateRecord(uint64_t tsc, uint16_t dom, uint16_t vcpu, Runstate from,
                                Runstate to) {
  tracefmt::Record rec;
  rec.event = tracefmt::ev::kRunstateChange | (static_cast<uint32_t>(from) << 8) |
              (static_cast<uint32_t>(to) << 4);
  rec.has_tsc = true;
  rec.tsc = tsc;
  rec.extra_words = 1;
  rec.extra[0] = (uint32_t{dom} << 16) | vcpu;
  return rec;
}

tracefmt::Record LostRecord(uint64_t tsc, uint32_t count, uint64_t first_tsc) {
  tracefmt::Record rec;
  rec.event = tracefmt::ev::kLostRecords;
  rec.has_tsc = true;
  rec.tsc = tsc;
  rec.extra_words = 4;
  rec.extra = {count, 0, static_cast<uint32_t>(first_tsc), static_cast<uint32_t>(first_tsc >> 32)};
  return rec;
}

tracefmt::MergedRecord On(uint32_t cpu, const tracefmt::Record& rec) {
  return {.cpu = cpu, .tsc = rec.tsc, .file_offset = 0, .rec = rec};
}

// --- Output ------------------------------------------------------------------------------------

std::string ReadAll(std::FILE* f) {
  std::rewind(f);
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  return text;
}

// Runs `records` through a builder and returns the parsed JSON.
Json Convert(const std::vector<tracefmt::MergedRecord>& records, TimelineConfig config = {},
             TimelineStats* stats = nullptr) {
  if (config.cpu_khz == 0) config.cpu_khz = kGhzKhz;
  std::FILE* f = std::tmpfile();
  EXPECT_NE(f, nullptr);
  TraceEventWriter writer(f);
  TimelineBuilder timeline(config, writer);
  for (const auto& m : records) timeline.Add(m);
  timeline.Finish();
  EXPECT_TRUE(writer.Finish(timeline.Summary()).ok());
  if (stats) *stats = timeline.stats();
  const std::string text = ReadAll(f);
  std::fclose(f);
  return Json::parse(text);  // throws — and fails the test — on invalid JSON
}

// Integral nanoseconds back from the exact "us.nnn" the writer produces.
int64_t Ns(const Json& micros) {
  return std::llround(micros.get<double>() * 1000.0);
}

std::vector<Json> Events(const Json& doc, const std::string& ph) {
  std::vector<Json> out;
  for (const Json& e : doc.at("traceEvents")) {
    if (e.at("ph") == ph) out.push_back(e);
  }
  return out;
}

std::vector<Json> RunstateSlices(const Json& doc) {
  std::vector<Json> out;
  for (const Json& e : Events(doc, "X")) {
    if (e.at("cat") == "runstate") out.push_back(e);
  }
  return out;
}

// Per thread (pid, tid), slices in time order.
std::map<std::pair<uint32_t, uint32_t>, std::vector<Json>> SlicesByThread(const Json& doc) {
  std::map<std::pair<uint32_t, uint32_t>, std::vector<Json>> threads;
  for (const Json& s : RunstateSlices(doc))
    threads[{s["pid"].get<uint32_t>(), s["tid"].get<uint32_t>()}].push_back(s);
  for (auto& [key, slices] : threads) {
    std::stable_sort(slices.begin(), slices.end(),
                     [](const Json& a, const Json& b) { return Ns(a["ts"]) < Ns(b["ts"]); });
  }
  return threads;
}

// The structure every timeline must have, whatever the input: slices with non-negative
// durations, back to back on each thread, ending at the trace's end; every process and thread
// used is named; counters never negative.
void ExpectWellFormed(const Json& doc) {
  ASSERT_TRUE(doc.contains("traceEvents"));
  ASSERT_TRUE(doc["traceEvents"].is_array());
  std::set<uint32_t> named_pids;
  std::set<std::pair<uint32_t, uint32_t>> named_tids;
  for (const Json& m : Events(doc, "M")) {
    if (m["name"] == "process_name") named_pids.insert(m["pid"].get<uint32_t>());
    if (m["name"] == "thread_name")
      named_tids.insert({m["pid"].get<uint32_t>(), m["tid"].get<uint32_t>()});
    if (m["name"] == "process_name" || m["name"] == "thread_name") {
      EXPECT_FALSE(m["args"]["name"].get<std::string>().empty());
    }
  }
  int64_t end_ns = 0;
  for (const Json& x : Events(doc, "X")) {
    EXPECT_GE(Ns(x["dur"]), 0) << x;
    EXPECT_GE(Ns(x["ts"]), 0) << x;
    EXPECT_TRUE(named_pids.contains(x["pid"].get<uint32_t>())) << x;
    EXPECT_TRUE(named_tids.contains({x["pid"].get<uint32_t>(), x["tid"].get<uint32_t>()})) << x;
    end_ns = std::max(end_ns, Ns(x["ts"]) + Ns(x["dur"]));
  }
  for (const auto& [thread, slices] : SlicesByThread(doc)) {
    for (size_t i = 1; i < slices.size(); ++i) {
      // Back to back: no gap, no overlap (so they nest trivially).
      ASSERT_EQ(Ns(slices[i]["ts"]), Ns(slices[i - 1]["ts"]) + Ns(slices[i - 1]["dur"]))
          << "thread " << thread.second << " slice " << i;
    }
    const Json& last = slices.back();
    EXPECT_EQ(Ns(last["ts"]) + Ns(last["dur"]), end_ns) << "thread " << thread.second;
    EXPECT_TRUE(last["args"]["open_at_end"].get<bool>());
  }
  for (const Json& c : Events(doc, "C")) {
    EXPECT_TRUE(named_pids.contains(c["pid"].get<uint32_t>()));
    EXPECT_GE(c["args"]["vCPUs"].get<int64_t>(), 0) << c;
  }
}

// --- Hand-made traces ----------------------------------------------------------------------------

TEST(TimelineBuilder, SlicesFollowRunstateChanges) {
  const Json doc = Convert({
      On(0, RunstateRecord(1000, 1, 0, Runstate::kBlocked, Runstate::kRunnable)),
      On(0, RunstateRecord(1500, 1, 0, Runstate::kRunnable, Runstate::kRunning)),
      On(0, RunstateRecord(4000, 1, 0, Runstate::kRunning, Runstate::kBlocked)),
      On(1, RunstateRecord(5000, 0, 0, Runstate::kBlocked, Runstate::kRunning)),
  });
  ExpectWellFormed(doc);
  const auto threads = SlicesByThread(doc);
  const auto& vcpu = threads.at({1, VcpuTid(1, 0)});
  ASSERT_EQ(vcpu.size(), 3u);
  EXPECT_EQ(vcpu[0]["name"], "runnable");
  EXPECT_EQ(Ns(vcpu[0]["ts"]), 0);
  EXPECT_EQ(Ns(vcpu[0]["dur"]), 500);
  EXPECT_EQ(vcpu[1]["name"], "running");
  EXPECT_EQ(Ns(vcpu[1]["dur"]), 2500);
  EXPECT_EQ(vcpu[2]["name"], "blocked");
  EXPECT_EQ(Ns(vcpu[2]["dur"]), 1000);  // open until the trace's end at 5000
  EXPECT_EQ(doc["otherData"]["slices"], 4);
}

TEST(TimelineBuilder, NamesProcessesAndThreads) {
  TimelineConfig config{.cpu_khz = kGhzKhz, .domain_names = {{1, "g1"}, {2, "bad\x1b[0mname"}}};
  const Json doc = Convert(
      {
          On(0, RunstateRecord(10, 1, 0, Runstate::kRunnable, Runstate::kRunning)),
          On(0, RunstateRecord(20, 2, 3, Runstate::kBlocked, Runstate::kRunnable)),
          On(0, RunstateRecord(30, 0, 1, Runstate::kBlocked, Runstate::kRunnable)),
          On(0, RunstateRecord(40, 32767, 0, Runstate::kRunning, Runstate::kRunnable)),
      },
      config);
  std::map<uint32_t, std::string> processes;
  std::map<uint32_t, std::string> threads;
  for (const Json& m : Events(doc, "M")) {
    if (m["name"] == "process_name") processes[m["pid"]] = m["args"]["name"];
    if (m["name"] == "thread_name" && m["pid"] == 2) threads[m["tid"]] = m["args"]["name"];
  }
  EXPECT_EQ(processes[1], "domain 1 (g1)");
  EXPECT_EQ(processes[2], "domain 2 (bad?[0mname)");  // the escape cannot reach a terminal
  EXPECT_EQ(processes[0], "domain 0");
  EXPECT_EQ(processes[32767], "idle");
  EXPECT_EQ(threads[VcpuTid(2, 3)], "vCPU 3");
}

TEST(TimelineBuilder, CountsChangesThatContradictTheOpenSlice) {
  TimelineStats stats;
  const Json doc = Convert(
      {
          On(0, RunstateRecord(100, 1, 0, Runstate::kRunnable, Runstate::kRunning)),
          // Claims to leave "blocked", but the vCPU was running: a change was lost.
          On(0, RunstateRecord(200, 1, 0, Runstate::kBlocked, Runstate::kRunnable)),
          On(0, RunstateRecord(300, 1, 0, Runstate::kRunnable, Runstate::kRunning)),
      },
      {}, &stats);
  EXPECT_EQ(stats.anomalies, 1u);
  ExpectWellFormed(doc);
}

TEST(TimelineBuilder, ClampsRecordsOlderThanTheOpenSlice) {
  TimelineStats stats;
  const Json doc = Convert(
      {
          On(0, RunstateRecord(500, 1, 0, Runstate::kRunnable, Runstate::kRunning)),
          On(1, RunstateRecord(400, 1, 0, Runstate::kRunning, Runstate::kBlocked)),
          On(1, RunstateRecord(900, 1, 0, Runstate::kBlocked, Runstate::kRunnable)),
      },
      {}, &stats);
  EXPECT_EQ(stats.anomalies, 1u);
  ExpectWellFormed(doc);  // still back to back, no negative duration
}

TEST(TimelineBuilder, LostRecordsBecomeRangesAndInstants) {
  TimelineStats stats;
  const Json doc = Convert(
      {
          On(0, RunstateRecord(1000, 1, 0, Runstate::kRunnable, Runstate::kRunning)),
          On(1, LostRecord(3000, 42, /*first_tsc=*/2000)),
          On(0, LostRecord(4000, 7, /*first_tsc=*/10)),  // began before the trace: clamped
      },
      {}, &stats);
  ExpectWellFormed(doc);
  EXPECT_EQ(stats.lost_records, 49u);
  std::vector<Json> ranges;
  for (const Json& x : Events(doc, "X")) {
    if (x["cat"] == "loss") ranges.push_back(x);
  }
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0]["pid"], kLostRecordsPid);
  EXPECT_EQ(ranges[0]["tid"], 1);
  EXPECT_EQ(Ns(ranges[0]["ts"]), 1000);
  EXPECT_EQ(Ns(ranges[0]["dur"]), 1000);
  EXPECT_EQ(ranges[0]["args"]["count"], 42);
  EXPECT_EQ(Ns(ranges[1]["ts"]), 0);
  EXPECT_TRUE(ranges[1]["args"]["began_before_trace"].get<bool>());
  const std::vector<Json> instants = Events(doc, "i");
  ASSERT_EQ(instants.size(), 2u);
  EXPECT_EQ(instants[0]["s"], "g");
  EXPECT_EQ(Ns(instants[0]["ts"]), 1000);
}

TEST(TimelineBuilder, RunQueueCountsRunnableVcpusOnTheirLastCpu) {
  const Json doc = Convert({
      On(1, RunstateRecord(100, 1, 0, Runstate::kRunnable, Runstate::kRunning)),
      On(1, RunstateRecord(200, 1, 0, Runstate::kRunning, Runstate::kRunnable)),      // cpu1: 1
      On(0, RunstateRecord(300, 2, 0, Runstate::kBlocked, Runstate::kRunnable)),      // cpu0: 1
      On(0, RunstateRecord(350, 32767, 0, Runstate::kRunning, Runstate::kRunnable)),  // idle: no
      On(0, RunstateRecord(400, 1, 0, Runstate::kRunnable, Runstate::kRunning)),      // cpu1: 0
      On(0, RunstateRecord(500, 1, 0, Runstate::kRunning, Runstate::kRunnable)),      // now cpu0: 2
  });
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> series;
  for (const Json& c : Events(doc, "C")) {
    series[c["name"]].push_back({Ns(c["ts"]), c["args"]["vCPUs"].get<int64_t>()});
  }
  using Samples = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(series["cpu1 run queue"], (Samples{{0, 0}, {100, 1}, {300, 0}}));
  // cpu0 drops to 1 and 0 at the end of the trace, where the open slices close.
  EXPECT_EQ(series["cpu0 run queue"], (Samples{{200, 0}, {200, 1}, {400, 2}, {400, 1}, {400, 0}}));
}

TEST(TraceEventWriter, WritesExactMicroseconds) {
  EXPECT_EQ(FormatMicros(0), "0.000");
  EXPECT_EQ(FormatMicros(1), "0.001");
  EXPECT_EQ(FormatMicros(1234567), "1234.567");
  EXPECT_EQ(FormatMicros(18446744073709551615u), "18446744073709551.615");
}

TEST(TraceEventWriter, ReportsAFailedWrite) {
  std::FILE* full = std::fopen("/dev/full", "w");
  if (full == nullptr) GTEST_SKIP() << "no /dev/full";
  TraceEventWriter writer(full);
  writer.ProcessName(1, "x");
  const tracefmt::Status status = writer.Finish({});
  EXPECT_FALSE(status.ok());
  std::fclose(full);
}

// --- Real captures ------------------------------------------------------------------------------

struct Change {
  uint64_t tsc;
  tracefmt::RunstateChange rc;
};

// The runstate changes of a capture, read independently of the timeline code.
std::vector<Change> ReadChanges(const std::string& path, uint64_t& first_tsc, uint64_t& last_tsc) {
  auto file = tracefmt::TraceFileReader::Open(path);
  EXPECT_TRUE(file.ok());
  tracefmt::MergedTraceReader merged(*file);
  tracefmt::MergedRecord m;
  std::vector<Change> changes;
  first_tsc = 0;
  last_tsc = 0;
  while (merged.Next(m)) {
    if (m.tsc == 0) continue;
    if (first_tsc == 0) first_tsc = m.tsc;
    last_tsc = std::max(last_tsc, m.tsc);
    if (auto rc = tracefmt::AsRunstateChange(m.rec)) changes.push_back({m.tsc, *rc});
  }
  return changes;
}

Json ConvertFile(const std::string& path, const TimelineConfig& config, ConvertOutcome* outcome) {
  auto file = tracefmt::TraceFileReader::Open(path);
  EXPECT_TRUE(file.ok()) << path;
  std::FILE* f = std::tmpfile();
  *outcome = ConvertTraceFile(*file, config, f);
  const std::string text = ReadAll(f);
  std::fclose(f);
  return Json::parse(text);
}

class RealCapture : public testing::TestWithParam<std::string> {};

TEST_P(RealCapture, TimelineMatchesTheRunstateChanges) {
  const std::string path = SharedData(GetParam());
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  ConvertOutcome outcome;
  const Json doc = ConvertFile(path, CaptureConfig(), &outcome);
  ASSERT_FALSE(outcome.input_error.has_value()) << outcome.input_error->Describe();
  ASSERT_TRUE(outcome.output.ok());
  ExpectWellFormed(doc);

  uint64_t first_tsc = 0;
  uint64_t last_tsc = 0;
  const std::vector<Change> changes = ReadChanges(path, first_tsc, last_tsc);
  ASSERT_FALSE(changes.empty());
  const tracefmt::TscClock clock(kCaptureKhz);
  // One slice per change, and each vCPU's slices start exactly at its changes, in the state
  // the change entered.
  std::map<std::pair<uint32_t, uint32_t>, std::vector<Change>> by_vcpu;
  for (const Change& c : changes)
    by_vcpu[{c.rc.domain, VcpuTid(c.rc.domain, c.rc.vcpu)}].push_back(c);
  const auto threads = SlicesByThread(doc);
  ASSERT_EQ(threads.size(), by_vcpu.size());
  for (const auto& [key, vcpu_changes] : by_vcpu) {
    const auto& slices = threads.at(key);
    ASSERT_EQ(slices.size(), vcpu_changes.size());
    for (size_t i = 0; i < slices.size(); ++i) {
      EXPECT_EQ(Ns(slices[i]["ts"]),
                static_cast<int64_t>(clock.ToNs(vcpu_changes[i].tsc - first_tsc)));
      EXPECT_EQ(slices[i]["name"], tracefmt::RunstateName(vcpu_changes[i].rc.new_state));
    }
    // The slices sum to the vCPU's span: first change to the end of the trace.
    int64_t sum = 0;
    for (const Json& s : slices) sum += Ns(s["dur"]);
    EXPECT_EQ(sum, static_cast<int64_t>(clock.ToNs(last_tsc - first_tsc) -
                                        clock.ToNs(vcpu_changes.front().tsc - first_tsc)));
  }
  EXPECT_EQ(doc["otherData"]["runstate_changes"], changes.size());
  EXPECT_EQ(doc["otherData"]["anomalies"], 0);  // the captures' changes chain consistently
}

INSTANTIATE_TEST_SUITE_P(SharedData, RealCapture,
                         testing::Values("xen-4.17-qemu/trace-sched.bin",
                                         "xen-4.17-qemu/trace-all.bin",
                                         "xen-4.17-qemu-guests/trace-sched.bin"));

TEST(RealCaptureGuests, ShowsTheGuestsAndTheLoss) {
  const std::string path = SharedData("xen-4.17-qemu-guests/trace-sched.bin");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  ConvertOutcome outcome;
  const Json doc = ConvertFile(path, CaptureConfig({{1, "g1"}, {2, "g2"}}), &outcome);
  std::set<std::string> names;
  for (const Json& m : Events(doc, "M")) {
    if (m["name"] == "process_name") names.insert(m["args"]["name"]);
  }
  EXPECT_TRUE(names.contains("domain 1 (g1)"));
  EXPECT_TRUE(names.contains("domain 2 (g2)"));
  EXPECT_TRUE(names.contains("idle"));
  // The hypervisor reported 1,668,166 lost records, in one report per CPU.
  EXPECT_EQ(doc["otherData"]["lost_records"], 1668166);
  EXPECT_EQ(Events(doc, "i").size(), 2u);
  // Domain 1 spins and never blocks; domain 2 sleeps and wakes.
  std::map<uint32_t, std::set<std::string>> states;
  for (const Json& s : RunstateSlices(doc)) states[s["pid"]].insert(s["name"]);
  EXPECT_FALSE(states[1].contains("blocked"));
  EXPECT_TRUE(states[1].contains("running"));
  EXPECT_TRUE(states[2].contains("blocked"));
  EXPECT_TRUE(states[2].contains("runnable"));
}

// --- Streams ---------------------------------------------------------------------------------

std::vector<std::string> SliceKeys(const Json& doc) {
  std::vector<std::string> keys;
  for (const Json& s : RunstateSlices(doc)) keys.push_back(s.dump());
  std::sort(keys.begin(), keys.end());
  return keys;
}

Json ConvertFd(int fd, const StreamOptions& options, ConvertOutcome* outcome) {
  std::FILE* f = std::tmpfile();
  *outcome = ConvertTraceStream(fd, CaptureConfig(), f, options);
  const std::string text = ReadAll(f);
  std::fclose(f);
  return Json::parse(text);
}

TEST(ConvertTraceStream, GivesTheSameSlicesAsTheFile) {
  const std::string path = SharedData("xen-4.17-qemu-guests/trace-sched.bin");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  ConvertOutcome from_file;
  const Json file_doc = ConvertFile(path, CaptureConfig(), &from_file);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ConvertOutcome from_stream;
  const Json stream_doc = ConvertFd(fd, {}, &from_stream);
  ::close(fd);
  EXPECT_FALSE(from_stream.input_error.has_value());
  ExpectWellFormed(stream_doc);
  EXPECT_EQ(SliceKeys(stream_doc), SliceKeys(file_doc));
  EXPECT_EQ(stream_doc["otherData"]["lost_records"], 1668166);
}

std::vector<char> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void Append(const std::string& path, const char* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(data, static_cast<std::streamsize>(size));
}

TEST(ConvertTraceStream, FollowsACaptureAsItGrows) {
  const std::string source = SharedData("xen-4.17-qemu/trace-sched.bin");
  if (!std::filesystem::exists(source)) GTEST_SKIP() << source << " not present";
  const std::vector<char> bytes = ReadBytes(source);
  const std::string path = testing::TempDir() + "/timeline_follow.bin";
  std::filesystem::remove(path);
  // The "writer" appends the capture in three uneven pieces, the cuts falling inside chunks;
  // each time the converter runs out of data it gets the next piece, then is told to stop.
  const std::vector<size_t> cuts = {0, 100'003, 700'001, bytes.size()};
  Append(path, bytes.data(), cuts[1]);
  size_t piece = 1;
  StreamOptions options;
  int waits = 0;
  options.wait_for_more = [&] {
    ++waits;
    if (piece + 1 >= cuts.size()) return false;
    Append(path, bytes.data() + cuts[piece], cuts[piece + 1] - cuts[piece]);
    ++piece;
    return true;
  };
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ConvertOutcome followed;
  const Json doc = ConvertFd(fd, options, &followed);
  ::close(fd);
  EXPECT_EQ(waits, 3);
  EXPECT_FALSE(followed.input_error.has_value());
  ExpectWellFormed(doc);
  ConvertOutcome whole;
  EXPECT_EQ(SliceKeys(doc), SliceKeys(ConvertFile(source, CaptureConfig(), &whole)));
}

TEST(ConvertTraceStream, ATruncatedStreamKeepsWhatCameBefore) {
  const std::string source = SharedData("xen-4.17-qemu/trace-sched.bin");
  if (!std::filesystem::exists(source)) GTEST_SKIP() << source << " not present";
  const std::vector<char> bytes = ReadBytes(source);
  const std::string path = testing::TempDir() + "/timeline_truncated.bin";
  std::filesystem::remove(path);
  Append(path, bytes.data(), bytes.size() / 2);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ConvertOutcome outcome;
  const Json doc = ConvertFd(fd, {}, &outcome);
  ::close(fd);
  ASSERT_TRUE(outcome.input_error.has_value());
  EXPECT_EQ(outcome.input_error->code, tracefmt::ErrorCode::kTruncated);
  EXPECT_LE(outcome.input_error->offset, bytes.size() / 2);
  ExpectWellFormed(doc);
  EXPECT_GT(RunstateSlices(doc).size(), 100u);
  EXPECT_TRUE(doc["otherData"].contains("input_error"));
}

TEST(ChunkStream, RejectsGarbageWithTheOffset) {
  const std::string path = testing::TempDir() + "/timeline_garbage.bin";
  std::filesystem::remove(path);
  const char garbage[16] = "not a trace....";
  Append(path, garbage, sizeof garbage);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ChunkStream stream(fd);
  OwnedChunk chunk;
  EXPECT_EQ(stream.Next(chunk), ChunkStream::State::kError);
  ASSERT_TRUE(stream.error().has_value());
  EXPECT_EQ(stream.error()->offset, 0u);
  EXPECT_EQ(stream.error()->code, tracefmt::ErrorCode::kCorrupt);
  ::close(fd);
}

// --- The command ------------------------------------------------------------------------------

int RunMain(std::vector<std::string> args) {
  args.insert(args.begin(), "xenbake-timeline");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return TimelineMain(static_cast<int>(argv.size()), argv.data());
}

TEST(TimelineMain, ConvertsACaptureToAFile) {
  const std::string source = SharedData("xen-4.17-qemu/trace-sched.bin");
  if (!std::filesystem::exists(source)) GTEST_SKIP() << source << " not present";
  const std::string out = testing::TempDir() + "/timeline_main.json";
  EXPECT_EQ(RunMain({"--cpu-khz", "2596120", "--no-progress", "-o", out, source}), 0);
  std::ifstream in(out);
  const Json doc = Json::parse(in);
  ExpectWellFormed(doc);
}

TEST(TimelineMain, FailsClearlyOnBadInput) {
  const std::string out = testing::TempDir() + "/timeline_bad.json";
  EXPECT_EQ(RunMain({"--cpu-khz", "1000", "-o", out, "/nonexistent/trace.bin"}), 1);
  EXPECT_EQ(RunMain({"-o", out, "-"}), cli::kExitUsage);  // stdin needs --cpu-khz
  EXPECT_EQ(RunMain({"--cpu-khz", "1000", "--name", "x", "-o", out, "-"}), cli::kExitUsage);
  EXPECT_EQ(RunMain({"--cpu-khz", "1000", "--bogus", "-o", out, "-"}), cli::kExitUsage);
  const std::string garbage = testing::TempDir() + "/timeline_garbage_main.bin";
  std::filesystem::remove(garbage);
  Append(garbage, "0123456789abcdef", 16);
  EXPECT_EQ(RunMain({"--cpu-khz", "1000", "-o", out, garbage}), cli::kExitPartial);
  std::ifstream in(out);
  Json doc;
  EXPECT_NO_THROW(doc = Json::parse(in));  // still a complete JSON document
  EXPECT_TRUE(doc["otherData"].contains("input_error"));
}

}  // namespace
}  // namespace xenbake::timeline
