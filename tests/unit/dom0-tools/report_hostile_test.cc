// xenbake-report against logs and arguments a hostile user crafts: intact checksums around
// figures that cannot be true, domain incarnations that repeat across daemon runs, inputs that
// never end, times that do not fit.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli/exit_status.h"
#include "report/report_main.h"
#include "report/report_model.h"
#include "tracefmt/acctlog.h"

namespace xenbake::report {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kWallStart = 1'800'000'000 * kSec;

// A one-vCPU domain's record of window [second, second + 1) of its run, busy `running` ns.
tracefmt::AcctDomainRecord OneSecondOf(uint32_t domid, uint64_t instance, uint64_t run_wall_start,
                                       uint64_t second, uint64_t running) {
  tracefmt::AcctDomainRecord d;
  d.domid = domid;
  d.instance = instance;
  d.vcpus = 1;
  d.name = fmt::format("guest-{}", instance);
  d.window_start_ns = second * kSec;
  d.window_end_ns = (second + 1) * kSec;
  d.realtime_end_ns = run_wall_start + (second + 1) * kSec;
  d.running_ns = running;
  d.blocked_ns = kSec - running;
  return d;
}

struct LogBuilder {
  std::vector<std::byte> bytes = tracefmt::EncodeAcctHeader(tracefmt::AcctLogHeader{});
  // Appends `record`, returning its frame's offset.
  uint64_t Add(const tracefmt::AcctRecord& record) {
    const uint64_t offset = bytes.size();
    tracefmt::AppendAcctRecord(record, bytes);
    return offset;
  }
};

Report BuildFrom(const std::vector<std::byte>& bytes) {
  tracefmt::Result<tracefmt::AcctLogReader> reader = tracefmt::AcctLogReader::FromBytes(bytes);
  EXPECT_TRUE(reader.ok());
  ReportBuilder builder({});
  builder.AddLog("hostile.log", *reader);
  return builder.Build();
}

// Three runs of a daemon, each seeing domain 7 as its incarnation 2 for 4 s, busy 3/4 of the
// time, then logging its shutdown total. `run_records`: as a 1.1 daemon logs it, else as 1.0.
std::vector<std::byte> SameIncarnationInThreeRuns(bool run_records) {
  LogBuilder log;
  for (uint64_t run = 0; run < 3; ++run) {
    const uint64_t wall = kWallStart + run * 60 * kSec;
    tracefmt::AcctRunRecord mark;
    mark.run_id = 9000 + run;
    mark.start_realtime_ns = wall;
    mark.realtime_ns = wall;
    if (run_records) log.Add(mark);
    for (uint64_t s = 0; s < 4; ++s) log.Add(OneSecondOf(7, 2, wall, s, 3 * kSec / 4));
    tracefmt::AcctDomainRecord total = OneSecondOf(7, 2, wall, 0, 3 * kSec);
    total.window_end_ns = 4 * kSec;
    total.realtime_end_ns = wall + 4 * kSec;
    total.blocked_ns = kSec;
    total.final_reason = tracefmt::AcctFinalReason::kShutdown;
    log.Add(total);
    mark.phase = tracefmt::AcctRunPhase::kEnd;
    mark.realtime_ns = wall + 5 * kSec;
    if (run_records) log.Add(mark);
  }
  return log.bytes;
}

TEST(ReportHostile, AnIncarnationRepeatedInEveryRunIsOneRowPerRun) {
  for (bool run_records : {true, false}) {
    SCOPED_TRACE(run_records ? "1.1 log" : "1.0 log");
    const Report r = BuildFrom(SameIncarnationInThreeRuns(run_records));
    ASSERT_EQ(r.runs.size(), 3u);
    ASSERT_EQ(r.domains.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const DomainTotalsRow& row = r.domains[i];
      EXPECT_EQ(row.run, i);
      EXPECT_EQ(row.intervals, 4u);
      EXPECT_EQ(row.totals.running_ns, 3 * kSec);
      ASSERT_TRUE(row.final_record.has_value());
      // The final record and the summed windows tell the same story.
      EXPECT_EQ(row.final_record->running_ns, row.totals.running_ns);
      EXPECT_EQ(row.final_record->realtime_end_ns, kWallStart + (i * 60 + 4) * kSec);
    }
    EXPECT_TRUE(r.rejected.empty());
  }
}

TEST(ReportHostile, ImplausibleRecordsAreSkippedByOffsetAndSumsNeverWrap) {
  LogBuilder log;
  std::vector<uint64_t> bad;
  for (uint64_t s = 0; s < 4; ++s) {
    tracefmt::AcctDomainRecord d = OneSecondOf(1, 0, kWallStart, s, kSec / 2);
    d.dispatches = UINT64_MAX - 1;  // not a time: cannot be bounded, but must not wrap
    log.Add(d);
    tracefmt::AcctHostRecord h;
    h.window_start_ns = s * kSec;
    h.window_end_ns = (s + 1) * kSec;
    h.realtime_end_ns = d.realtime_end_ns;
    h.records = UINT64_MAX / 2;
    log.Add(h);
  }
  tracefmt::AcctDomainRecord wraps = OneSecondOf(2, 0, kWallStart, 1, UINT64_MAX);
  bad.push_back(log.Add(wraps));
  bad.push_back(log.Add(wraps));
  tracefmt::AcctDomainRecord backwards = OneSecondOf(2, 0, kWallStart, 2, 0);
  std::swap(backwards.window_start_ns, backwards.window_end_ns);
  bad.push_back(log.Add(backwards));
  tracefmt::AcctDomainRecord eternal = OneSecondOf(2, 0, kWallStart, 3, 0);
  eternal.window_end_ns = eternal.window_start_ns + 1'000'000'000'000'000'000;
  bad.push_back(log.Add(eternal));
  tracefmt::AcctHostRecord eternal_host;
  eternal_host.window_start_ns = 3 * kSec;
  eternal_host.window_end_ns = 3 * kSec + 1'000'000'000'000'000'000;
  eternal_host.realtime_end_ns = kWallStart + 4 * kSec;
  bad.push_back(log.Add(eternal_host));
  tracefmt::AcctDomainRecord overbusy = OneSecondOf(2, 0, kWallStart, 0, 0);
  overbusy.vcpus = 2;
  overbusy.running_ns = 2 * kSec + kSec / 2;  // 2.5 vCPU-seconds in one second of two vCPUs
  bad.push_back(log.Add(overbusy));
  tracefmt::AcctDomainRecord busy_final = OneSecondOf(2, 0, kWallStart, 0, 10 * kSec);
  busy_final.final_reason = tracefmt::AcctFinalReason::kShutdown;
  bad.push_back(log.Add(busy_final));

  const Report r = BuildFrom(log.bytes);
  ASSERT_EQ(r.rejected.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    ASSERT_TRUE(r.rejected[i].offset.has_value());
    EXPECT_EQ(*r.rejected[i].offset, bad[i]) << r.rejected[i].reason;
    EXPECT_EQ(r.rejected[i].path, "hostile.log");
  }
  EXPECT_EQ(r.period_ns, 4 * kSec);
  EXPECT_EQ(r.windows, 4u);
  ASSERT_EQ(r.domains.size(), 1u);  // domain 2 has nothing plausible
  EXPECT_EQ(r.domains[0].totals.running_ns, 2 * kSec);
  EXPECT_EQ(r.domains[0].totals.dispatches, UINT64_MAX);
  EXPECT_EQ(r.trace_records, UINT64_MAX);
}

// The daemon publishes time it learned late in the window it learned it (docs/api.md): on real
// Xen the idle domain's 1 s window held 3.4 s of runnable time 10 s into the run. That is
// plausible; only more than the vCPUs had since the run began is not.
TEST(ReportHostile, TimePublishedLateInItsRunIsKeptMoreThanTheRunHadIsNot) {
  LogBuilder log;
  tracefmt::AcctDomainRecord late = OneSecondOf(32767, 0, kWallStart, 9, 0);
  late.vcpus = 2;
  late.blocked_ns = 0;
  late.runnable_ns = 3'400'000'000;
  log.Add(late);
  tracefmt::AcctDomainRecord beyond = OneSecondOf(32767, 0, kWallStart, 9, 0);
  beyond.vcpus = 2;
  beyond.blocked_ns = 0;
  beyond.runnable_ns = 21 * kSec;  // 2 vCPUs × 10 s is all there was
  const uint64_t beyond_at = log.Add(beyond);
  const Report r = BuildFrom(log.bytes);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].offset, beyond_at);
  ASSERT_EQ(r.domains.size(), 1u);
  EXPECT_EQ(r.domains[0].totals.runnable_ns, 3'400'000'000u);
}

std::string TempPath(const std::string& name) {
  return testing::TempDir() + "/" + name;
}

int RunReport(std::vector<std::string> args) {
  args.insert(args.begin(), "xenbake-report");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ReportMain(static_cast<int>(argv.size()), argv.data());
}

std::string WriteBytes(const std::string& name, const std::vector<std::byte>& bytes) {
  const std::string path = TempPath(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return path;
}

TEST(ReportHostile, ImplausibleRecordsMakeTheExitStatusThatOfDamage) {
  LogBuilder log;
  log.Add(OneSecondOf(1, 0, kWallStart, 0, kSec / 2));
  const uint64_t bad = log.Add(OneSecondOf(1, 0, kWallStart, 1, UINT64_MAX));
  const std::string path = WriteBytes("hostile_counters.log", log.bytes);
  const std::string out = TempPath("hostile_counters.json");
  EXPECT_EQ(RunReport({"--format", "json", "-o", out, path}), cli::kExitPartial);
  std::ifstream in(out);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["rejected"].size(), 1u);
  EXPECT_EQ(j["rejected"][0]["offset"], bad);
  EXPECT_EQ(j["domains"][0]["running_ns"], kSec / 2);
}

TEST(ReportHostile, RefusesInputsThatAreNotRegularFilesOrTooLarge) {
  EXPECT_EQ(RunReport({"/dev/zero"}), 1);  // would otherwise be read for ever
  const std::string fifo = TempPath("hostile_fifo.log");
  std::filesystem::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(RunReport({fifo}), 1);  // would otherwise wait for a writer
  std::filesystem::remove(fifo);
  EXPECT_EQ(RunReport({testing::TempDir()}), 1);
  // Sparse: larger than any log the daemon writes without taking the disk space.
  const std::string huge = TempPath("hostile_huge.log");
  { std::ofstream create(huge, std::ios::trunc); }
  ASSERT_EQ(::truncate(huge.c_str(), (1ll << 30) + 1), 0);
  EXPECT_EQ(RunReport({huge}), 1);
  std::filesystem::remove(huge);
}

TEST(ReportHostile, RefusesTimesThatAreEmptyOrDoNotFit) {
  for (const char* text : {"99999999999999999999", "", "inf", "nan", "1e5", "-1", "9999-12-31",
                           "18446744074", "2554-07-22"}) {
    EXPECT_FALSE(ParseTimeArgument(text).has_value()) << text;
  }
  // The last second whose nanoseconds fit 64 bits, by digits and by date.
  EXPECT_EQ(ParseTimeArgument("18446744072"), 18'446'744'072 * kSec);
  EXPECT_EQ(ParseTimeArgument("2554-07-21"), 18'446'659'200 * kSec);
  const std::string log = WriteBytes("hostile_times.log", SameIncarnationInThreeRuns(true));
  const std::string out = TempPath("hostile_times.csv");
  EXPECT_EQ(RunReport({"--from", "", "-o", out, log}), cli::kExitUsage);
  EXPECT_EQ(RunReport({"--to", "", "-o", out, log}), cli::kExitUsage);
  EXPECT_EQ(RunReport({"--from", "99999999999999999999", "-o", out, log}), cli::kExitUsage);
  EXPECT_EQ(RunReport({"--from", "1800000000", "-o", out, log}), 0);
}

}  // namespace
}  // namespace xenbake::report
