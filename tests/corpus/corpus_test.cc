// Corpus of broken inputs (tests/data/broken, made by tests/data/generate.py): each gives a clear
// error with the byte offset of the damage, no crash, and every record before the damage. Checked
// through the library (file order and merged) and end to end through the xenbake-dump program.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/exit_status.h"
#include "tracefmt/merge.h"
#include "tracefmt/summary.h"
#include "tracefmt/trace_file.h"

namespace tracefmt {
namespace {

const std::string kBroken = std::string(XENBAKED_TEST_DATA) + "/broken";

struct BrokenCase {
  std::string name;
  std::string code;
  uint64_t offset = 0;
  uint64_t records_delivered = 0;  // file order, CPU_CHANGE included; see generate.py
};

std::vector<BrokenCase> LoadCases() {
  std::vector<BrokenCase> cases;
  std::ifstream in(kBroken + "/expect.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    BrokenCase c;
    fields >> c.name >> c.code >> c.offset >> c.records_delivered;
    cases.push_back(c);
  }
  return cases;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class BrokenInputTest : public ::testing::TestWithParam<BrokenCase> {
 protected:
  std::string Path() const { return kBroken + "/" + GetParam().name + ".bin"; }
};

TEST(BrokenCorpusTest, CorpusIsComplete) {
  const std::vector<BrokenCase> cases = LoadCases();
  EXPECT_GE(cases.size(), 8u);
  for (const BrokenCase& c : cases)
    EXPECT_TRUE(std::filesystem::exists(kBroken + "/" + c.name + ".bin")) << c.name;
}

TEST_P(BrokenInputTest, FileOrderDeliversEverythingBeforeTheDamage) {
  const BrokenCase& c = GetParam();
  auto reader = TraceFileReader::Open(Path());
  ASSERT_TRUE(reader.ok()) << reader.error().Describe();
  const TraceSummary s = SummarizeTrace(*reader);
  EXPECT_EQ(s.records, c.records_delivered);
  ASSERT_FALSE(s.anomalies.empty());
  const Error& first = s.anomalies.front();
  EXPECT_EQ(first.offset, c.offset) << first.Describe();
  EXPECT_EQ(ErrorCodeName(first.code), c.code) << first.Describe();
  EXPECT_NE(first.Describe().find("at byte " + std::to_string(c.offset)), std::string::npos);
}

TEST_P(BrokenInputTest, MergeDeliversTheSameRecordsAndTheSameFirstError) {
  const BrokenCase& c = GetParam();
  auto reader = TraceFileReader::Open(Path());
  ASSERT_TRUE(reader.ok());
  const TraceSummary s = SummarizeTrace(*reader);
  reader->Rewind();
  MergedTraceReader merged(*reader);
  MergedRecord m;
  uint64_t count = 0;
  while (merged.Next(m)) ++count;
  EXPECT_EQ(count, s.records - s.cpu_change_records);
  ASSERT_TRUE(merged.error());
  EXPECT_EQ(merged.error()->offset, c.offset) << merged.error()->Describe();
}

// The program: exit status 3 (partial), the damage and its offset on stderr, the records before it
// on stdout (file order prints one line per record, CPU_CHANGE included).
TEST_P(BrokenInputTest, XenbakeDumpReportsOffsetAndExitsNonZero) {
  const BrokenCase& c = GetParam();
  const std::string out = ::testing::TempDir() + "/corpus-" + c.name + ".out";
  const std::string err = ::testing::TempDir() + "/corpus-" + c.name + ".err";
  for (const char* order : {"file", "merged"}) {
    const std::string cmd = std::string(XENBAKE_DUMP_BINARY) + " --order " + order + " '" + Path() +
                            "' >'" + out + "' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << "crashed: " << cmd;
    EXPECT_EQ(WEXITSTATUS(status), cli::kExitPartial) << cmd;
    const std::string stderr_text = Slurp(err);
    EXPECT_NE(stderr_text.find("at byte " + std::to_string(c.offset) + ":"), std::string::npos)
        << stderr_text;
    EXPECT_NE(stderr_text.find(c.code), std::string::npos) << stderr_text;
    if (std::string(order) == "file") {
      const std::string stdout_text = Slurp(out);
      EXPECT_EQ(static_cast<uint64_t>(std::count(stdout_text.begin(), stdout_text.end(), '\n')),
                c.records_delivered);
    }
  }
  std::remove(out.c_str());
  std::remove(err.c_str());
}

INSTANTIATE_TEST_SUITE_P(Corpus, BrokenInputTest, ::testing::ValuesIn(LoadCases()),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace tracefmt
