// Golden tests: xenbake-dump's deterministic output on slices of the real captures compared with
// tests/data/golden/*.expect, and the summary of the full real captures (read in place from
// shared/data) compared with the figures their READMEs publish.
//
// After an intended change of the output format, regenerate the expectations with
//   XENBAKED_UPDATE_GOLDEN=1 ctest -R golden
// and review the diff like any other change.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../unit/dump/run_dump.h"
#include "cli/exit_status.h"

namespace dom0tools {
namespace {

using testing::DumpRun;
using testing::RunDumpMain;

const std::string kData = XENBAKED_TEST_DATA;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct GoldenCase {
  const char* expect;  // file name under tests/data/golden
  std::vector<std::string> args;
};

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, OutputEqualsExpectFile) {
  const GoldenCase& c = GetParam();
  std::vector<std::string> args = c.args;
  // Slices are named relative to tests/data; the output names them the same way.
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(kData);
  DumpRun run = RunDumpMain(args);
  std::filesystem::current_path(cwd);
  ASSERT_EQ(run.status, cli::kExitOk) << run.err;
  const std::string expect_path = kData + "/golden/" + c.expect;
  if (std::getenv("XENBAKED_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(expect_path) << run.out;
    GTEST_SKIP() << "rewrote " << expect_path;
  }
  ASSERT_TRUE(std::filesystem::exists(expect_path)) << expect_path;
  const std::string expected = ReadText(expect_path);
  if (run.out != expected) {
    const std::string actual_path = std::string(XENBAKED_BINARY_DIR) + "/" + c.expect + ".actual";
    std::ofstream(actual_path) << run.out;
    FAIL() << "output differs from " << expect_path << "; see: diff -u " << expect_path << " "
           << actual_path;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Slices, GoldenTest,
    ::testing::Values(
        GoldenCase{"qemu-all.merged.expect", {"--cpu-khz", "2596120", "slices/qemu-all.bin"}},
        GoldenCase{"qemu-sched.merged.expect", {"--cpu-khz", "2596120", "slices/qemu-sched.bin"}},
        GoldenCase{"guests-sched.merged.expect",
                   {"--cpu-khz", "2596120", "slices/guests-sched.bin"}},
        GoldenCase{"guests-sched.file-order.expect",
                   {"--order", "file", "slices/guests-sched.bin"}},
        GoldenCase{"qemu-all.jsonl.expect", {"--format", "json", "slices/qemu-all.bin"}},
        GoldenCase{"guests-sched.summary.expect", {"--summary", "slices/guests-sched.bin"}},
        GoldenCase{"qemu-sched.summary-json.expect",
                   {"--summary", "--format", "json", "slices/qemu-sched.bin"}}),
    [](const auto& info) {
      std::string name = info.param.expect;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

// `xenbake-dump --summary --format json` on the full real captures gives exactly the READMEs'
// figures.
struct Published {
  const char* file;
  uint64_t bytes, records, cpu_change, wrap, lost_events, lost, cpu0, cpu1;
};

class RealCaptureJsonTest : public ::testing::TestWithParam<Published> {};

TEST_P(RealCaptureJsonTest, SummaryJsonEqualsReadme) {
  const Published& p = GetParam();
  const std::string path = std::string(XENBAKED_SHARED_DATA) + "/" + p.file;
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is absent: shared/data is not beside the project";
  DumpRun run = RunDumpMain({"--summary", "--format", "json", path});
  ASSERT_EQ(run.status, cli::kExitOk) << run.err;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["bytes"], p.bytes);
  EXPECT_EQ(j["records"], p.records);
  EXPECT_EQ(j["cpu_change_records"], p.cpu_change);
  EXPECT_EQ(j["wrap_records"], p.wrap);
  EXPECT_EQ(j["lost_records_events"], p.lost_events);
  EXPECT_EQ(j["lost_records"], p.lost);
  EXPECT_EQ(j["per_cpu"], nlohmann::json({{"0", p.cpu0}, {"1", p.cpu1}}));
  uint64_t class_total = 0;
  for (const auto& [name, count] : j["per_class"].items()) class_total += count.get<uint64_t>();
  EXPECT_EQ(class_total, p.records);
  for (const char* cpu : {"0", "1"}) {
    const auto& t = j["tsc"][cpu];
    EXPECT_EQ(t["span"], t["last"].get<uint64_t>() - t["first"].get<uint64_t>());
    EXPECT_NEAR(t["span"].get<double>(), 12.9e9, 0.1e9);
  }
  EXPECT_TRUE(j["anomalies"].empty());
}

INSTANTIATE_TEST_SUITE_P(SharedData, RealCaptureJsonTest,
                         ::testing::Values(Published{"xen-4.17-qemu/trace-all.bin", 4542976, 216206,
                                                     108, 27, 0, 0, 110252, 105846},
                                           Published{"xen-4.17-qemu/trace-sched.bin", 1105828,
                                                     48749, 97, 8, 0, 0, 23239, 25413},
                                           Published{"xen-4.17-qemu-guests/trace-sched.bin",
                                                     1063076, 46496, 98, 8, 2, 1668166, 23535,
                                                     22863}),
                         [](const auto& info) { return std::to_string(info.index); });

}  // namespace
}  // namespace dom0tools
