#include "dom0tools/dump.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/exit_status.h"
#include "run_dump.h"
#include "tracefmt/clock.h"
#include "tracefmt/events.h"
#include "tracefmt/testing/trace_builder.h"

namespace dom0tools {
namespace {

using testing::RunDumpMain;
using tracefmt::testing::Rec;
using tracefmt::testing::RecNoTsc;
namespace ev = tracefmt::ev;

class DumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tracefmt::testing::TraceBuilder t;
    t.Chunk(1, {Rec(ev::kSwitchInfPrev, 2596120, {0, 1, 5000}), RecNoTsc(ev::kWrapBuffer)})
        .Chunk(0, {Rec(ev::kLostRecords, 1000, {7, 0, 1, 0}), Rec(0x0badf00d, 3000, {1, 2})});
    ASSERT_TRUE(t.WriteTo(path_));
  }
  void TearDown() override {
    std::remove(path_.c_str());
    std::remove(tracefmt::SidecarPath(path_).c_str());
  }
  const std::string path_ = ::testing::TempDir() + "/dump-test-" + std::to_string(::getpid());
};

TEST_F(DumpTest, MergedTextIsOneDeterministicLinePerRecord) {
  auto run = RunDumpMain({path_});
  EXPECT_EQ(run.status, cli::kExitOk) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out,
            "off=52 cpu=0 tsc=1000 LOST_RECORDS count=7 domain=0 vcpu=0 first_tsc=1\n"
            "off=80 cpu=0 tsc=3000 0x0badf00d words=0x00000001,0x00000002\n"
            "off=12 cpu=1 tsc=2596120 SCHED_SWITCH_INFPREV domain=0 unit=1 runtime_ns=5000\n"
            "off=36 cpu=1 tsc=- TRACE_WRAP_BUFFER\n");
}

TEST_F(DumpTest, FileOrderShowsChunkHeaders) {
  auto run = RunDumpMain({"--order", "file", path_});
  EXPECT_EQ(run.status, cli::kExitOk);
  EXPECT_EQ(run.out.substr(0, run.out.find('\n')),
            "off=0 cpu=1 tsc=- TRACE_CPU_CHANGE cpu=1 window_bytes=28");
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 6);
}

TEST_F(DumpTest, NanosecondsFromOptionOrSidecar) {
  auto with_option = RunDumpMain({"--cpu-khz", "2596120", path_});
  EXPECT_NE(with_option.out.find("tsc=2596120 ns=1000000 "), std::string::npos) << with_option.out;
  tracefmt::CaptureMeta meta;
  meta.cpu_khz = 1000;
  ASSERT_TRUE(tracefmt::WriteCaptureMeta(path_, meta).ok());
  auto with_sidecar = RunDumpMain({path_});
  EXPECT_NE(with_sidecar.out.find("tsc=3000 ns=3000000 "), std::string::npos) << with_sidecar.out;
}

TEST_F(DumpTest, JsonLinesCarryFieldsAndRawWords) {
  auto run = RunDumpMain({"--format", "json", path_});
  ASSERT_EQ(run.status, cli::kExitOk);
  std::vector<nlohmann::json> lines;
  size_t start = 0;
  for (size_t nl; (nl = run.out.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(nlohmann::json::parse(run.out.substr(start, nl - start)));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["name"], "LOST_RECORDS");
  EXPECT_EQ(lines[0]["fields"]["count"], 7);
  EXPECT_EQ(lines[1]["event"], "0x0badf00d");
  EXPECT_FALSE(lines[1].contains("name"));
  EXPECT_EQ(lines[1]["data"], nlohmann::json::array({1, 2}));
  EXPECT_TRUE(lines[3]["tsc"].is_null());
}

TEST_F(DumpTest, SummaryJsonIsOneObjectWithTheAgreedKeys) {
  auto run = RunDumpMain({"--summary", "--format", "json", path_});
  ASSERT_EQ(run.status, cli::kExitOk);
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["records"], 6);
  EXPECT_EQ(j["cpu_change_records"], 2);
  EXPECT_EQ(j["per_cpu"]["0"], 2);
  EXPECT_EQ(j["per_cpu"]["1"], 2);
  EXPECT_EQ(j["lost_records"], 7);
  EXPECT_EQ(j["wrap_records"], 1);
  EXPECT_EQ(j["per_class"]["GEN"], 4);
  EXPECT_EQ(j["per_event"]["SCHED_SWITCH_INFPREV"], 1);
  EXPECT_EQ(j["per_event"]["0x0badf00d"], 1);
  EXPECT_EQ(j["tsc"]["0"]["span"], 2000);
  EXPECT_TRUE(j["anomalies"].empty());
}

TEST_F(DumpTest, SummaryTextNamesTheFigures) {
  auto run = RunDumpMain({"--summary", path_});
  ASSERT_EQ(run.status, cli::kExitOk);
  EXPECT_NE(run.out.find("records             6 (CPU_CHANGE included)"), std::string::npos);
  EXPECT_NE(run.out.find("lost_records        7 reported by 1 LOST_RECORDS records"),
            std::string::npos);
}

TEST(DumpCliTest, HelpDocumentsOutputOrderAndExitStatus) {
  auto run = RunDumpMain({"--help"});
  EXPECT_EQ(run.status, cli::kExitOk);
  for (const char* section :
       {"OUTPUT", "ORDER", "CPU FREQUENCY", "DAMAGED INPUT", "EXIT STATUS", "EXAMPLES", "--summary",
        "--format", "--output", "--order", "--cpu-khz"}) {
    EXPECT_NE(run.out.find(section), std::string::npos) << section;
  }
}

TEST(DumpCliTest, UsageErrorsExitWithTwoAMissingFileWithOne) {
  EXPECT_EQ(RunDumpMain({}).status, cli::kExitUsage);
  EXPECT_EQ(RunDumpMain({"--order", "sideways", "x.bin"}).status, cli::kExitUsage);
  EXPECT_EQ(RunDumpMain({"--json", "x.bin"}).status, cli::kExitUsage);
  auto missing = RunDumpMain({"/nonexistent/trace.bin"});
  EXPECT_EQ(missing.status, cli::kExitFailure);
  EXPECT_NE(missing.err.find("/nonexistent/trace.bin"), std::string::npos);
}

}  // namespace
}  // namespace dom0tools
