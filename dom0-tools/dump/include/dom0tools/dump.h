// dom0tools/dump.h — xenbake-dump: a xentrace file as text, JSON lines or a summary.
//
// The program's main() is one line calling DumpMain; tests call DumpMain or RunDump with their
// own streams and compare what comes out.
//
//   int status = dom0tools::DumpMain(argc, argv);              // the program
//   dom0tools::DumpOptions o{.path = "trace.bin", .summary = true, .json = true};
//
// Exit statuses are cli/exit_status.h's: 3 for a damaged input (everything before it printed).
//   int status = dom0tools::RunDump(o, out_file, err_file);    // a test
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace dom0tools {

enum class DumpOrder {
  kMerged,  // all CPUs in one stream by TSC, ties to the lower CPU (the default)
  kFile,    // as stored: chunk by chunk, each chunk's CPU_CHANGE header shown
};

struct DumpOptions {
  std::string path;
  bool summary = false;
  bool json = false;
  DumpOrder order = DumpOrder::kMerged;
  uint64_t cpu_khz = 0;      // 0: from the sidecar file when there is one, else no nanoseconds
  std::string output = "-";  // DumpMain: "-" is its `out`
};

int RunDump(const DumpOptions& options, std::FILE* out, std::FILE* err);

// Parses the command line (CLI11) and runs.
int DumpMain(int argc, const char* const* argv, std::FILE* out = stdout, std::FILE* err = stderr);

}  // namespace dom0tools
