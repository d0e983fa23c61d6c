// The xenbake-account tool as a person runs it: JSON and text output, --help, damaged input,
// a missing CPU frequency.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/exit_status.h"
#include "dom0tools/account.h"

namespace {

const std::string kGuests =
    std::string(XENBAKED_SHARED_DATA) + "/xen-4.17-qemu-guests/trace-sched.bin";

#define SKIP_IF_ABSENT(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << (path) << " is absent (shared/data)"

struct ToolRun {
  int status = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(std::FILE* f) {
  std::string s;
  std::rewind(f);
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

ToolRun RunTool(std::vector<std::string> args) {
  args.insert(args.begin(), "xenbake-account");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  ToolRun r;
  r.status = dom0tools::AccountMain(static_cast<int>(argv.size()), argv.data(), out, err);
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  return r;
}

TEST(AccountToolTest, JsonHasTotalsPerDomainVcpuAndCpu) {
  SKIP_IF_ABSENT(kGuests);
  const ToolRun r = RunTool({"--cpu-khz", "2596120", "--format", "json", kGuests});
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["lost_records"], 1668166);
  EXPECT_EQ(j["records"], 23535 + 22863);
  EXPECT_EQ(j["anomalies"], 0);
  EXPECT_GT(j["elapsed_ns"].get<uint64_t>(), 4'900'000'000u);
  ASSERT_EQ(j["cpus"].size(), 2u);
  for (const auto& c : j["cpus"]) EXPECT_GE(c["capture_ratio"].get<double>(), 0.99);
  std::vector<uint32_t> domids;
  for (const auto& d : j["domains"]) {
    domids.push_back(d["domid"]);
    for (const char* key :
         {"running_ns", "runnable_ns", "blocked_ns", "offline_ns", "dispatches", "slices", "wakes",
          "blocks", "allocated_ns", "hypercalls", "io", "lost_records", "vcpus"})
      EXPECT_TRUE(d.contains(key)) << key;
  }
  EXPECT_EQ(domids, (std::vector<uint32_t>{0, 1, 2, 32767}));
  EXPECT_EQ(j["domains"][2]["vcpus"].size(), 2u);
}

TEST(AccountToolTest, TextTableNamesEveryDomainAndCpu) {
  SKIP_IF_ABSENT(kGuests);
  const ToolRun r = RunTool({"--cpu-khz", "2596120", kGuests});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("lost records 1668166"), std::string::npos);
  EXPECT_NE(r.out.find("running_s"), std::string::npos);
  EXPECT_NE(r.out.find("capture"), std::string::npos);
  EXPECT_NE(r.out.find(" 32767 "), std::string::npos);
}

TEST(AccountToolTest, DamagedFileGivesTheOffsetTotalsUpToThereAndStatusOne) {
  SKIP_IF_ABSENT(kGuests);
  std::ifstream in(kGuests, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 500'000u);
  const std::string cut = ::testing::TempDir() + "/account_truncated.bin";
  std::ofstream(cut, std::ios::binary).write(bytes.data(), 500'003);  // mid-record

  const ToolRun r = RunTool({"--cpu-khz", "2596120", "--format", "json", cut});
  EXPECT_EQ(r.status, cli::kExitPartial);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["records"].get<uint64_t>(), 1000u) << "totals up to the damage are printed";
  ASSERT_TRUE(j.contains("error"));
  EXPECT_LE(j["error"]["offset"].get<uint64_t>(), 500'003u);
  EXPECT_NE(r.err.find(std::to_string(j["error"]["offset"].get<uint64_t>())), std::string::npos)
      << "stderr names the byte offset";
  std::filesystem::remove(cut);
}

TEST(AccountToolTest, RefusesToGuessTheCpuFrequency) {
  SKIP_IF_ABSENT(kGuests);
  const ToolRun r = RunTool({kGuests});  // no --cpu-khz and no sidecar beside the shared capture
  EXPECT_EQ(r.status, cli::kExitUsage);
  EXPECT_NE(r.err.find("cpu"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(AccountToolTest, AFrequencyOutsideOneKilohertzToAHundredGigahertzIsAUsageError) {
  // 23 nines saturated to 2^64-1 kHz ("over 0.000000 s"); 0 was silently replaced by the sidecar.
  SKIP_IF_ABSENT(kGuests);
  for (const char* khz : {"0", "99999999999999999999999", "100000001"}) {
    const ToolRun r = RunTool({"--cpu-khz", khz, kGuests});
    EXPECT_EQ(r.status, cli::kExitUsage) << khz;
    EXPECT_NE(r.err.find("--cpu-khz"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << khz;
  }
}

TEST(AccountToolTest, MissingFileIsAFailure) {
  const ToolRun r = RunTool({"--cpu-khz", "1000000", "/nonexistent/trace.bin"});
  EXPECT_EQ(r.status, cli::kExitFailure);
  EXPECT_FALSE(r.err.empty());
}

TEST(AccountToolTest, HelpReadsLikeAManPage) {
  const ToolRun r = RunTool({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* section : {"HOW IT COUNTS", "OUTPUT", "CPU FREQUENCY", "DAMAGED INPUT",
                              "EXIT STATUS", "EXAMPLES", "--cpu-khz", "--format", "--output"})
    EXPECT_NE(r.out.find(section), std::string::npos) << section;
}

}  // namespace
