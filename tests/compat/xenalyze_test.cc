// Files tracefmt writes load in Debian's xenalyze (package xen-utils-common) without warnings:
// a real capture re-emitted chunk by chunk (windows split in two writes, as a wrapped ring is) and
// a synthetic capture. xenalyze is looked for in $XENALYZE, in $XENBAKED_XEN_TOOLS (where
// scripts/fetch-xen-tools.sh unpacks Debian's packages; run-tests.sh exports it), in that script's
// default folder, in /usr/bin and in the benchmarks' cache; the test skips with a message when none
// is there (and CI's strict skip check then fails the run: tests/allowed-skips.txt).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "tracefmt/events.h"
#include "tracefmt/testing/trace_builder.h"
#include "tracefmt/trace_file.h"

namespace tracefmt {
namespace {

std::string FindXenalyze() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("XENALYZE")) candidates.emplace_back(env);
  if (const char* tools = std::getenv("XENBAKED_XEN_TOOLS"))
    candidates.push_back(std::string(tools) + "/usr/bin/xenalyze");
  candidates.emplace_back("/var/cache/xenbaked/xen-tools/usr/bin/xenalyze");
  candidates.emplace_back("/usr/bin/xenalyze");
  if (const char* home = std::getenv("HOME"))
    candidates.push_back(std::string(home) + "/.cache/xenbaked/xen-utils-common/usr/bin/xenalyze");
  for (const std::string& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct XenalyzeRun {
  int status = -1;
  std::string out;
  std::string err;
};

XenalyzeRun RunXenalyze(const std::string& xenalyze, const std::string& trace) {
  const std::string out = trace + ".xenalyze.out";
  const std::string err = trace + ".xenalyze.err";
  const std::string cmd =
      xenalyze + " --summary --cpu-hz=2596120000 '" + trace + "' >'" + out + "' 2>'" + err + "'";
  XenalyzeRun run;
  const int status = std::system(cmd.c_str());
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = Slurp(out);
  run.err = Slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return run;
}

// Lines of xenalyze's stderr that report a problem with the input. Its progress messages
// ("Creating domain 0") are not problems, nor is the shutdown it reports when a CPU's records end
// ("deactivate_pcpu: setting d0v0 to state LOST": every vCPU still running at the end of a
// capture is marked so, on the real captures too).
std::vector<std::string> Warnings(const std::string& err) {
  static constexpr std::string_view kProblems[] = {"warn",    "error", "fatal",   "unexpected",
                                                   "strange", "bad ",  "corrupt", "invalid",
                                                   "lost",    "skipp", "unknown", "assert"};
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    const bool end_of_capture =
        line.starts_with("deactivate_pcpu: setting d") && line.ends_with(" to state LOST");
    std::string lower = line;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (std::string_view problem : kProblems) {
      if (!end_of_capture && lower.find(problem) != std::string::npos) {
        lines.push_back(line);
        break;
      }
    }
  }
  return lines;
}

size_t CountOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class XenalyzeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    xenalyze_ = FindXenalyze();
    if (xenalyze_.empty())
      GTEST_SKIP() << "xenalyze not found (apt-get download xen-utils-common; see tests/README.md)";
  }
  std::string TempPath(const std::string& name) const {
    return ::testing::TempDir() + "/xenalyze-" + std::to_string(::getpid()) + "-" + name;
  }
  std::string xenalyze_;
};

TEST_F(XenalyzeTest, RewrittenRealCaptureLoadsWithoutWarnings) {
  const std::string source = std::string(XENBAKED_SHARED_DATA) + "/xen-4.17-qemu/trace-all.bin";
  if (!std::filesystem::exists(source)) GTEST_SKIP() << source << " is absent";
  auto reader = TraceFileReader::Open(source);
  ASSERT_TRUE(reader.ok());
  const std::string path = TempPath("rewritten.bin");
  {
    auto writer = TraceFileWriter::Create(path);
    ASSERT_TRUE(writer.ok());
    Chunk c;
    while (reader->Next(c)) {
      const size_t half = c.bytes.size() / 2 & ~size_t{3};
      ASSERT_TRUE(writer->WriteChunk(c.cpu, c.bytes.first(half), c.bytes.subspan(half)).ok());
    }
  }
  const XenalyzeRun run = RunXenalyze(xenalyze_, path);
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Warnings(run.err), std::vector<std::string>{}) << run.err;
  EXPECT_NE(run.out.find("cpu 1"), std::string::npos) << "both CPUs seen:\n" << run.out;
  const XenalyzeRun original = RunXenalyze(xenalyze_, source);
  EXPECT_EQ(run.err, original.err) << "xenalyze sees the rewritten file as it sees the original";
  std::remove(path.c_str());
}

TEST_F(XenalyzeTest, SyntheticCaptureLoadsWithoutWarnings) {
  // Two CPUs, dom0's vCPU 0 blocking and waking on CPU 0 while CPU 1 runs idle and hypercalls.
  using testing::Rec;
  const uint32_t run_to_blocked = ev::kRunstateChange | 0u << 8 | 2u << 4;
  const uint32_t blocked_to_runnable = ev::kRunstateChange | 2u << 8 | 1u << 4;
  const uint32_t runnable_to_running = ev::kRunstateChange | 1u << 8 | 0u << 4;
  const uint32_t idle0 = 0 | ev::kIdleDomain << 16;
  testing::TraceBuilder t;
  uint64_t tsc0 = 1'000'000;
  for (int round = 0; round < 50; ++round) {
    // Each round's chunks cover the same stretch of time on both CPUs, as xentrace's polls do.
    const uint64_t tsc1 = tsc0 + 500;
    t.Chunk(0, {Rec(ev::kPvHypercallV2, tsc0 += 1000, {1 | 1u << 20, 3}),
                Rec(ev::kSwitchInfPrev, tsc0 += 100, {0, 0, 5000}),
                Rec(run_to_blocked, tsc0 += 10, {0}), Rec(runnable_to_running, tsc0 += 10, {idle0}),
                Rec(ev::kSwitchInfNext, tsc0 += 10, {ev::kIdleDomain, 0, 100, ev::kNoTimeLimit}),
                Rec(ev::kSwitch, tsc0 += 10, {0, 0, ev::kIdleDomain, 0}),
                Rec(blocked_to_runnable, tsc0 += 50000, {0}), Rec(ev::kWake, tsc0 += 10, {0, 0}),
                Rec(ev::kSwitchInfPrev, tsc0 += 100, {ev::kIdleDomain, 0, 50000}),
                Rec(ev::kRunstateChange | 0u << 8 | 1u << 4, tsc0 += 10, {idle0}),
                Rec(runnable_to_running, tsc0 += 10, {0}),
                Rec(ev::kSwitchInfNext, tsc0 += 10, {0, 0, 200, 1000000}),
                Rec(ev::kSwitch, tsc0 += 10, {ev::kIdleDomain, 0, 0, 0})});
    t.Chunk(1, {Rec(ev::kPvHypercallV2, tsc1, {24 | 1u << 20, 0}),
                Rec(ev::kPvHypercallV2, tsc1 + 30000, {24 | 1u << 20, 0})});
  }
  const std::string path = TempPath("synthetic.bin");
  ASSERT_TRUE(t.WriteTo(path));
  const XenalyzeRun run = RunXenalyze(xenalyze_, path);
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Warnings(run.err), std::vector<std::string>{}) << run.err;
  // Each CPU is found once and read to the end: no CPU ran dry in the middle of the file.
  EXPECT_EQ(CountOf(run.err, "Activating pcpu"), 2u) << run.err;
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tracefmt
