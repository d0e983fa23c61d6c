// xenbake-report over accounting logs written with tracefmt's own encoder: totals, periods,
// the three text formats, the SVG plot, and damaged logs.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/exit_status.h"
#include "report/report_format.h"
#include "report/report_main.h"
#include "report/report_model.h"
#include "report/svg_writer.h"
#include "tracefmt/acctlog.h"

namespace xenbake::report {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kStartUnixNs = 1'714'564'800 * kSecond;  // 2024-05-01 12:00:00 UTC

tracefmt::AcctDomainRecord Interval(uint32_t domid, std::string name, uint64_t second,
                                    uint64_t running, uint64_t runnable, uint64_t blocked) {
  tracefmt::AcctDomainRecord d;
  d.domid = domid;
  d.vcpus = 1;
  d.name = std::move(name);
  d.window_start_ns = second * kSecond;
  d.window_end_ns = (second + 1) * kSecond;
  d.realtime_end_ns = kStartUnixNs + (second + 1) * kSecond;
  d.running_ns = running;
  d.runnable_ns = runnable;
  d.blocked_ns = blocked;
  d.dispatches = 10;
  d.io_records = 3;
  return d;
}

// 20 one-second windows: domain 1 spins (all running), domain 2 runs a quarter, waits a quarter
// and sleeps half; domain 2 is destroyed at the end. `offsets` receives each frame's offset.
std::vector<std::byte> SampleLog(std::vector<size_t>* offsets = nullptr) {
  tracefmt::AcctLogHeader header;
  header.created_realtime_ns = kStartUnixNs;
  header.cpu_khz = 2'596'120;
  header.host = "host-a";
  std::vector<std::byte> log = tracefmt::EncodeAcctHeader(header);
  const auto add = [&](const tracefmt::AcctRecord& r) {
    if (offsets) offsets->push_back(log.size());
    tracefmt::AppendAcctRecord(r, log);
  };
  for (uint64_t s = 0; s < 20; ++s) {
    add(Interval(1, "g1", s, kSecond, 0, 0));
    add(Interval(2, "g2", s, kSecond / 4, kSecond / 4, kSecond / 2));
    tracefmt::AcctHostRecord host;
    host.window_start_ns = s * kSecond;
    host.window_end_ns = (s + 1) * kSecond;
    host.realtime_end_ns = kStartUnixNs + (s + 1) * kSecond;
    host.records = 1000;
    host.lost_records = s == 5 ? 42 : 0;
    add(host);
  }
  tracefmt::AcctDomainRecord final_record = Interval(2, "g2", 19, 0, 0, 0);
  final_record.final_reason = tracefmt::AcctFinalReason::kDestroyed;
  add(final_record);
  return log;
}

Report Build(const std::vector<std::byte>& log, ReportPeriod period = {}) {
  tracefmt::Result<tracefmt::AcctLogReader> reader = tracefmt::AcctLogReader::FromBytes(log);
  EXPECT_TRUE(reader.ok());
  ReportBuilder builder(period);
  builder.AddLog("test.log", *reader);
  return builder.Build();
}

TEST(ReportBuilder, SumsIntervalsPerDomain) {
  const Report r = Build(SampleLog());
  EXPECT_EQ(r.host, "host-a");
  EXPECT_EQ(r.windows, 20u);
  EXPECT_EQ(r.period_ns, 20 * kSecond);
  EXPECT_EQ(r.trace_records, 20'000u);
  EXPECT_EQ(r.lost_records, 42u);
  ASSERT_EQ(r.domains.size(), 2u);
  EXPECT_EQ(r.domains[0].domid, 1u);
  EXPECT_EQ(r.domains[0].totals.running_ns, 20 * kSecond);
  EXPECT_DOUBLE_EQ(Percent(r.domains[0].totals.running_ns, r.period_ns), 100.0);
  EXPECT_DOUBLE_EQ(Percent(r.domains[1].totals.runnable_ns, r.period_ns), 25.0);
  EXPECT_DOUBLE_EQ(Percent(r.domains[1].totals.blocked_ns, r.period_ns), 50.0);
  EXPECT_EQ(r.domains[1].totals.dispatches, 200u);
  EXPECT_TRUE(r.domains[1].destroyed);
  EXPECT_FALSE(r.domains[0].destroyed);
  EXPECT_EQ(r.first_unix_ns, kStartUnixNs);
  EXPECT_EQ(r.last_unix_ns, kStartUnixNs + 20 * kSecond);
}

TEST(ReportBuilder, KeepsOnlyWindowsEndingInThePeriod) {
  const Report r =
      Build(SampleLog(), ReportPeriod{kStartUnixNs + 6 * kSecond, kStartUnixNs + 10 * kSecond});
  EXPECT_EQ(r.windows, 5u);  // windows ending at 6, 7, 8, 9, 10 s
  EXPECT_EQ(r.period_ns, 5 * kSecond);
  EXPECT_EQ(r.domains[0].totals.running_ns, 5 * kSecond);
  EXPECT_EQ(r.lost_records, 42u);        // the window ending at 6 s
  EXPECT_FALSE(r.domains[1].destroyed);  // destroyed after the period
}

TEST(ReportBuilder, ADomainBornInsideAWindowDoesNotAddToThePeriod) {
  tracefmt::AcctLogHeader header;
  std::vector<std::byte> log = tracefmt::EncodeAcctHeader(header);
  tracefmt::AppendAcctRecord(Interval(1, "old", 0, kSecond, 0, 0), log);
  tracefmt::AcctDomainRecord born = Interval(2, "new", 0, kSecond / 2, 0, 0);
  born.window_start_ns = kSecond / 2;  // first seen half-way through the window
  tracefmt::AppendAcctRecord(born, log);
  const Report r = Build(log);
  EXPECT_EQ(r.windows, 1u);
  EXPECT_EQ(r.period_ns, kSecond);
  EXPECT_DOUBLE_EQ(Percent(r.domains[1].totals.running_ns, r.period_ns), 50.0);
}

TEST(ParseTimeArgument, ReadsUtcTimesAndUnixSeconds) {
  EXPECT_EQ(ParseTimeArgument("2024-05-01T12:00:00Z"), kStartUnixNs);
  EXPECT_EQ(ParseTimeArgument("2024-05-01 12:00:00"), kStartUnixNs);
  EXPECT_EQ(ParseTimeArgument("2024-05-01"), kStartUnixNs - 12 * 3600 * kSecond);
  EXPECT_EQ(ParseTimeArgument("1714564800"), kStartUnixNs);
  EXPECT_EQ(ParseTimeArgument("1714564800.5"), kStartUnixNs + kSecond / 2);
  EXPECT_FALSE(ParseTimeArgument("yesterday").has_value());
  EXPECT_FALSE(ParseTimeArgument("2024-13-01").has_value());
  EXPECT_EQ(FormatUnixTime(kStartUnixNs), "2024-05-01 12:00:00");
}

TEST(FormatCsv, OneRowPerDomainWithPercentages) {
  const std::string csv = FormatCsv(Build(SampleLog()));
  std::istringstream lines(csv);
  std::string header, one, two, extra;
  std::getline(lines, header);
  std::getline(lines, one);
  std::getline(lines, two);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_EQ(header.rfind("domid,instance,name,", 0), 0u);
  EXPECT_EQ(one.rfind("1,0,\"g1\",0,20,", 0), 0u) << one;
  EXPECT_NE(one.find(",100.0000,0.0000,0.0000,"), std::string::npos) << one;
  EXPECT_NE(two.find(",25.0000,25.0000,50.0000,"), std::string::npos) << two;
}

TEST(ReportJson, CarriesTotalsAndPercentages) {
  const nlohmann::json j = ReportJson(Build(SampleLog()));
  EXPECT_EQ(j["windows"], 20);
  EXPECT_EQ(j["domains"][1]["name"], "g2");
  EXPECT_DOUBLE_EQ(j["domains"][1]["wait_pct"].get<double>(), 25.0);
  EXPECT_TRUE(j["problems"].empty());
}

TEST(ReportJson, GivesEachDomainsFinalRecordOrNull) {
  std::vector<std::byte> log = SampleLog();
  // Domain 1 alive when the daemon stopped: its totals run past the last closed window.
  tracefmt::AcctDomainRecord shutdown = Interval(1, "g1", 20, 0, 0, 0);
  shutdown.final_reason = tracefmt::AcctFinalReason::kShutdown;
  shutdown.window_start_ns = 0;
  shutdown.window_end_ns = 20 * kSecond + kSecond / 2;
  shutdown.running_ns = 20 * kSecond + kSecond / 2;
  shutdown.dispatches = 205;
  tracefmt::AppendAcctRecord(shutdown, log);
  const nlohmann::json j = ReportJson(Build(log));
  const nlohmann::json& one = j["domains"][0]["final"];
  EXPECT_EQ(one["reason"], "shutdown");
  EXPECT_EQ(one["running_ns"], 20 * kSecond + kSecond / 2);
  EXPECT_EQ(one["dispatches"], 205);
  EXPECT_EQ(one["last_seen_ns"], 20 * kSecond + kSecond / 2);
  EXPECT_EQ(j["domains"][0]["running_ns"], 20 * kSecond);  // intervals: closed windows only
  EXPECT_EQ(j["domains"][1]["final"]["reason"], "destroyed");
  EXPECT_TRUE(j["domains"][1]["destroyed"].get<bool>());
  // Out of the period: no final record, and not marked destroyed.
  const nlohmann::json early = ReportJson(
      Build(log, {.from_unix_ns = std::nullopt, .to_unix_ns = kStartUnixNs + 10 * kSecond}));
  EXPECT_TRUE(early["domains"][0]["final"].is_null());
  EXPECT_TRUE(early["domains"][1]["final"].is_null());
  EXPECT_FALSE(early["domains"][1]["destroyed"].get<bool>());
}

TEST(FormatTable, NamesDomainsByIdAndName) {
  const std::string table = FormatTable(Build(SampleLog()));
  EXPECT_NE(table.find("host host-a"), std::string::npos) << table;
  EXPECT_NE(table.find("2024-05-01 12:00:00 .. 2024-05-01 12:00:20 UTC"), std::string::npos);
  EXPECT_NE(table.find("    1 g1 "), std::string::npos) << table;
  EXPECT_NE(table.find("(destroyed)"), std::string::npos);
}

// Ten windows: domain 1 fully vouched for, domain 3 with a quarter of each window unknown (a
// loss gap), as a 1.2 daemon logs it; domain 3 ends alive at shutdown with its unknown total.
std::vector<std::byte> LogWithUnknownTime() {
  std::vector<std::byte> log = tracefmt::EncodeAcctHeader({.host = "host-u"});
  for (uint64_t s = 0; s < 10; ++s) {
    tracefmt::AppendAcctRecord(Interval(1, "known", s, kSecond, 0, 0), log);
    tracefmt::AcctDomainRecord partly = Interval(3, "partly", s, kSecond / 2, 0, kSecond / 4);
    partly.unknown_ns = kSecond / 4;
    tracefmt::AppendAcctRecord(partly, log);
  }
  // A final record spans the domain's whole life (here all ten windows), as the daemon writes it.
  tracefmt::AcctDomainRecord final_record = Interval(3, "partly", 9, 5 * kSecond, 0, 0);
  final_record.window_start_ns = 0;
  final_record.final_reason = tracefmt::AcctFinalReason::kShutdown;
  final_record.unknown_ns = 2'500'000'001;
  tracefmt::AppendAcctRecord(final_record, log);
  return log;
}

TEST(ReportUnknownTime, TheTableHasUnknownColumnsAndMarksTheDomain) {
  const std::string table = FormatTable(Build(LogWithUnknownTime()));
  EXPECT_NE(table.find(" UNK% "), std::string::npos) << table;
  EXPECT_NE(table.find(" UNKNOWN s "), std::string::npos) << table;
  std::istringstream lines(table);
  std::string line, known, partly;
  while (std::getline(lines, line)) {
    if (line.find(" known ") != std::string::npos) known = line;
    if (line.find(" partly ") != std::string::npos) partly = line;
  }
  // CPU% WAIT% BLK% UNK% then the seconds: 2.5 s of 10 s unknown is 25% and 2.500 s.
  EXPECT_NE(partly.find("  50.00    0.00   25.00   25.00       5.000       0.000       2.500"
                        "       2.500 "),
            std::string::npos)
      << table;
  EXPECT_NE(partly.find("(unknown time)"), std::string::npos) << partly;
  EXPECT_EQ(known.find("(unknown time)"), std::string::npos) << known;
  EXPECT_NE(table.find("unknown time: the trace cannot vouch for it"), std::string::npos);
  // A report without unknown time neither marks a domain nor explains the mark.
  EXPECT_EQ(FormatTable(Build(SampleLog())).find("unknown time"), std::string::npos);
}

TEST(ReportUnknownTime, CsvAndJsonCarryUnknownSecondsAndPercent) {
  const Report r = Build(LogWithUnknownTime());
  std::istringstream lines(FormatCsv(r));
  std::string header, known, partly;
  std::getline(lines, header);
  std::getline(lines, known);
  std::getline(lines, partly);
  // unknown_s and unknown_pct, then the run's index (one run here).
  EXPECT_TRUE(header.ends_with(",lost_records,unknown_s,unknown_pct,run")) << header;
  EXPECT_TRUE(partly.ends_with(",2.500000000,25.0000,0")) << partly;
  EXPECT_TRUE(known.ends_with(",0.000000000,0.0000,0")) << known;
  const nlohmann::json j = ReportJson(r);
  EXPECT_EQ(j["domains"][0]["unknown_ns"], 0);
  EXPECT_EQ(j["domains"][1]["unknown_ns"], 10 * (kSecond / 4));
  EXPECT_DOUBLE_EQ(j["domains"][1]["unknown_pct"].get<double>(), 25.0);
  EXPECT_EQ(j["domains"][1]["final"]["unknown_ns"], 2'500'000'001u);
}

TEST(RenderSvgPlot, DrawsThreePanelsWithALineEachPerDomain) {
  const std::string svg = RenderSvgPlot(Build(SampleLog()));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++polylines;
  }
  EXPECT_EQ(polylines, 6u);  // 3 panels × 2 domains, no gaps
  EXPECT_NE(svg.find("domain 1 (g1)"), std::string::npos);
  EXPECT_NE(svg.find("CPU %"), std::string::npos);
}

TEST(RenderSvgPlot, EscapesNames) {
  tracefmt::AcctLogHeader header;
  header.host = "h";
  std::vector<std::byte> log = tracefmt::EncodeAcctHeader(header);
  tracefmt::AppendAcctRecord(Interval(3, "<script>&", 0, kSecond, 0, 0), log);
  const std::string svg = RenderSvgPlot(Build(log));
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;&amp;"), std::string::npos);
}

TEST(ReportBuilder, ADamagedLogKeepsTheRecordsBeforeTheDamage) {
  std::vector<size_t> offsets;
  std::vector<std::byte> log = SampleLog(&offsets);
  const size_t damaged_at = offsets[30];    // the 11th second's first record
  log[damaged_at + 14] ^= std::byte{0xff};  // inside its payload: its CRC no longer matches
  const Report r = Build(log);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_FALSE(r.problems[0].truncated_tail);
  EXPECT_EQ(r.problems[0].error.offset, damaged_at);
  EXPECT_EQ(r.windows, 10u);
  EXPECT_EQ(r.domains[0].totals.running_ns, 10 * kSecond);
}

// Three daemon runs into one log, engine time starting again at 0 in each, 10 s apart on the
// wall clock. Each run has `windows` 1 s windows in which a 2-vCPU guest keeps both vCPUs busy
// (200% of one CPU) and Domain-0 runs 10%. With `run_records` each run starts with its run record
// and ends with a run-end record (format 1.1); without, the log is as a 1.0 daemon wrote it.
struct RunLoss {
  uint64_t at_start = 0;
  uint64_t during = 0;
};
std::vector<std::byte> ThreeRunLog(bool run_records, uint64_t windows = 5,
                                   std::vector<RunLoss> loss = {{}, {}, {}}) {
  tracefmt::AcctLogHeader header;
  header.host = "host-a";
  std::vector<std::byte> log = tracefmt::EncodeAcctHeader(header);
  for (uint64_t run = 0; run < 3; ++run) {
    const uint64_t run_start = kStartUnixNs + run * (windows + 10) * kSecond;
    tracefmt::AcctRunRecord mark;
    mark.run_id = 100 + run;
    mark.start_realtime_ns = run_start;
    mark.realtime_ns = run_start;
    if (run_records) tracefmt::AppendAcctRecord(mark, log);
    for (uint64_t s = 0; s < windows; ++s) {
      const uint64_t realtime_end = run_start + (s + 1) * kSecond;
      tracefmt::AcctDomainRecord guest = Interval(5, "guest", s, 2 * kSecond, 0, 0);
      guest.vcpus = 2;
      guest.realtime_end_ns = realtime_end;
      tracefmt::AcctDomainRecord dom0 = Interval(0, "Domain-0", s, kSecond / 10, 0, 0);
      dom0.realtime_end_ns = realtime_end;
      tracefmt::AppendAcctRecord(dom0, log);
      tracefmt::AppendAcctRecord(guest, log);
      tracefmt::AcctHostRecord host;
      host.window_start_ns = s * kSecond;
      host.window_end_ns = (s + 1) * kSecond;
      host.realtime_end_ns = realtime_end;
      host.records = 100;
      // The engine's windows miss what was lost before the first window began: 1 per window.
      host.lost_records = 1;
      // The daemon's own figures: everything at start is known from the first window on, loss
      // during the run grows.
      host.run_lost_records_at_start = loss[run].at_start;
      host.run_lost_records = loss[run].at_start + loss[run].during * s / windows;
      tracefmt::AppendAcctRecord(host, log);
    }
    tracefmt::AcctRunRecord end = mark;
    end.phase = tracefmt::AcctRunPhase::kEnd;
    end.realtime_ns = run_start + windows * kSecond + kSecond / 2;
    end.lost_records = loss[run].at_start + loss[run].during;
    end.lost_records_at_start = loss[run].at_start;
    if (run_records) tracefmt::AppendAcctRecord(end, log);
  }
  return log;
}

TEST(ReportBuilder, ALogOverThreeRestartsCoversTheRealTimeOfEachRun) {
  for (bool run_records : {true, false}) {
    SCOPED_TRACE(run_records ? "with run records" : "a 1.0 log: restarts seen by engine time");
    const Report r = Build(ThreeRunLog(run_records));
    EXPECT_EQ(r.windows, 15u);
    EXPECT_EQ(r.period_ns, 15 * kSecond);
    ASSERT_EQ(r.runs.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(r.runs[i].windows, 5u);
      EXPECT_EQ(r.runs[i].first_unix_ns, kStartUnixNs + i * 15 * kSecond);
      EXPECT_EQ(r.runs[i].last_unix_ns, kStartUnixNs + (i * 15 + 5) * kSecond);
      EXPECT_EQ(r.runs[i].ended_cleanly, run_records);
    }
    EXPECT_EQ(r.first_unix_ns, kStartUnixNs);
    EXPECT_EQ(r.last_unix_ns, kStartUnixNs + 35 * kSecond);
    // Incarnations are counted afresh in each run: one row per domain per run.
    ASSERT_EQ(r.domains.size(), 6u);
    uint64_t guest_running = 0;
    uint64_t dom0_running = 0;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(r.domains[i].domid, 0u);
      EXPECT_EQ(r.domains[i].run, i);
      EXPECT_EQ(r.domains[3 + i].run, i);
      EXPECT_EQ(r.domains[3 + i].totals.running_ns, 10 * kSecond);
      dom0_running += r.domains[i].totals.running_ns;
      guest_running += r.domains[3 + i].totals.running_ns;
    }
    // Never more than its vCPUs can run: 2 × 100%.
    EXPECT_DOUBLE_EQ(Percent(guest_running, r.period_ns), 200.0);
    EXPECT_DOUBLE_EQ(Percent(dom0_running, r.period_ns), 10.0);
    const std::string table = FormatTable(r);
    EXPECT_NE(table.find("covered 15 s in 15 windows over 3 daemon runs"), std::string::npos)
        << table;
    EXPECT_NE(table.find("run 2: 2024-05-01 12:00:15 .. 2024-05-01 12:00:20 UTC  5 s in 5 "
                         "windows"),
              std::string::npos)
        << table;
    EXPECT_NE(table.find("after 10 s without a daemon"), std::string::npos) << table;
  }
}

TEST(ReportBuilder, TheDaemonsLossBeforeStartAndDuringTheRunComeFromTheLog) {
  const Report r = Build(ThreeRunLog(true, 5, {{227'404, 48'304}, {0, 7}, {1'000, 0}}));
  EXPECT_TRUE(r.lost_at_start_known);
  EXPECT_EQ(r.lost_records_at_start, 227'404u + 1'000u);
  EXPECT_EQ(r.lost_records_during_run, 48'304u + 7u);
  EXPECT_EQ(r.lost_records, 227'404u + 1'000u + 48'304u + 7u);
  const std::string table = FormatTable(r);
  EXPECT_NE(table.find("lost before the daemon started 228404  lost while it ran 48311"),
            std::string::npos)
      << table;
  const nlohmann::json j = ReportJson(r);
  EXPECT_EQ(j["lost_records_at_start"], 228'404u);
  EXPECT_EQ(j["lost_records_during_run"], 48'311u);
  EXPECT_EQ(j["runs"].size(), 3u);
}

TEST(ReportBuilder, LossInAPeriodIsTheDifferenceOfTheDaemonsFigures) {
  // Only the first run's windows ending at 3, 4 and 5 s: its loss at start was before them.
  const Report r = Build(ThreeRunLog(true, 5, {{227'404, 50'000}, {0, 7}, {1'000, 0}}),
                         ReportPeriod{kStartUnixNs + 3 * kSecond, kStartUnixNs + 5 * kSecond});
  EXPECT_EQ(r.windows, 3u);
  EXPECT_EQ(r.lost_records_at_start, 0u);
  // Cumulative during-run loss 10,000 at the 2 s window, 40,000 at the 5 s one.
  EXPECT_EQ(r.lost_records_during_run, 30'000u);
}

TEST(ReportBuilder, AnOlderLogSaysItCannotTellLossBeforeStartApart) {
  const Report r = Build(ThreeRunLog(false));
  EXPECT_FALSE(r.lost_at_start_known);
  EXPECT_EQ(r.lost_records, 15u);  // the windows' own figures
  EXPECT_NE(FormatTable(r).find("lost by the hypervisor 15 (this log does not tell"),
            std::string::npos);
}

TEST(RenderSvgPlot, LinesBreakBetweenDaemonRuns) {
  const std::string svg = RenderSvgPlot(Build(ThreeRunLog(true)));
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++polylines;
  }
  EXPECT_EQ(polylines, 3u * 2u * 3u);  // panels × domains × runs
}

std::string WriteLog(const std::string& name, const std::vector<std::byte>& bytes) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return path;
}

int RunMain(std::vector<std::string> args) {
  args.insert(args.begin(), "xenbake-report");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ReportMain(static_cast<int>(argv.size()), argv.data());
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ReportMain, WritesJsonAndSvg) {
  const std::string log = WriteLog("report_ok.log", SampleLog());
  const std::string out = testing::TempDir() + "/report_ok.json";
  const std::string svg = testing::TempDir() + "/report_ok.svg";
  EXPECT_EQ(
      RunMain({"--format", "json", "-o", out, "--svg", svg, "--from", "2024-05-01T12:00:10Z", log}),
      0);
  const nlohmann::json j = nlohmann::json::parse(ReadText(out));
  EXPECT_EQ(j["windows"], 11);
  EXPECT_NE(ReadText(svg).find("</svg>"), std::string::npos);
}

TEST(ReportMain, ExitsNonZeroOnADamagedLogButReportsWhatCameBefore) {
  std::vector<size_t> offsets;
  std::vector<std::byte> bytes = SampleLog(&offsets);
  bytes[offsets[30] + 14] ^= std::byte{0xff};
  const std::string log = WriteLog("report_damaged.log", bytes);
  const std::string out = testing::TempDir() + "/report_damaged.json";
  EXPECT_EQ(RunMain({"--format", "json", "-o", out, log}), cli::kExitPartial);
  const nlohmann::json j = nlohmann::json::parse(ReadText(out));
  EXPECT_EQ(j["windows"], 10);
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_EQ(j["problems"][0]["offset"], offsets[30]);
}

TEST(ReportMain, AnUnfinishedLastRecordIsOnlyANote) {
  std::vector<std::byte> bytes = SampleLog();
  bytes.resize(bytes.size() - 5);  // the writer was killed inside the last record
  const std::string log = WriteLog("report_cut.log", bytes);
  const std::string out = testing::TempDir() + "/report_cut.csv";
  EXPECT_EQ(RunMain({"--format", "csv", "-o", out, log}), 0);
  EXPECT_NE(ReadText(out).find("\"g2\""), std::string::npos);
}

TEST(ReportMain, RefusesWhatIsNotALog) {
  const std::string log = WriteLog("report_garbage.log", std::vector<std::byte>(100));
  EXPECT_EQ(RunMain({log}), 1);
  EXPECT_EQ(RunMain({"/nonexistent/accounting.log"}), 1);
  const std::string ok = WriteLog("report_ok2.log", SampleLog());
  EXPECT_EQ(RunMain({"--from", "noon", ok}), cli::kExitUsage);
  EXPECT_EQ(RunMain({"--from", "2024-05-02", "--to", "2024-05-01", ok}), cli::kExitUsage);
  EXPECT_EQ(RunMain({"--format", "table", ok}), cli::kExitUsage);
}

TEST(XmlEscape, EscapesMarkup) {
  EXPECT_EQ(XmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
}

}  // namespace
}  // namespace xenbake::report
