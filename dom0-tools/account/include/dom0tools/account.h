// dom0tools/account.h — xenbake-account: per-domain, per-vCPU and per-CPU accounting of a
// xentrace file, by the same engine the daemon runs live.
//
// The program's main() is one line calling AccountMain; tests and benchmarks call RunAccount
// (the whole tool, with their own streams) or AccountFile (the engine over a file, no output).
//
//   int status = dom0tools::AccountMain(argc, argv);                     // the program
//   dom0tools::AccountOptions o{.path = "trace.bin", .cpu_khz = 2596120, .json = true};
//   int status = dom0tools::RunAccount(o, out_file, err_file);           // a test
//   auto result = dom0tools::AccountFile("trace.bin", 2596120);         // a benchmark
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tracefmt/result.h"
#include "xenbaked/accounting.h"

namespace dom0tools {

struct AccountOptions {
  std::string path;
  uint64_t cpu_khz = 0;  // 0: from the sidecar FILE.meta
  bool json = false;
  std::string output = "-";  // AccountMain: "-" is its `out`
  bool vcpus = true;         // per-vCPU rows/objects as well as per-domain
};

// Exit statuses are cli/exit_status.h's: 3 for a damaged input (the totals up to there printed).

struct AccountResult {
  xenbaked::AccountingSnapshot totals;  // at the newest record
  // Final records of incarnations no longer in `totals` (their id was reused in the file).
  std::vector<xenbaked::DomainTotals> replaced;
  std::optional<tracefmt::Error> damage;  // where reading stopped early, if it did
  uint64_t file_bytes = 0;
};

// Runs the engine over a file, merged by TSC. An Error only when the file cannot be opened;
// damage inside it is reported in the result with everything before it accounted.
tracefmt::Result<AccountResult> AccountFile(const std::string& path, uint64_t cpu_khz);

// Every domain incarnation of a result, by domid then incarnation.
std::vector<xenbaked::DomainTotals> AllDomains(const AccountResult& result);

int RunAccount(const AccountOptions& options, std::FILE* out, std::FILE* err);

// Parses the command line (CLI11) and runs.
int AccountMain(int argc, const char* const* argv, std::FILE* out = stdout,
                std::FILE* err = stderr);

}  // namespace dom0tools
