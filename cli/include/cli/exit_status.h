// cli/exit_status.h — the one exit-status convention of xenbaked and every xenbake-* tool.
//
//   0  success: everything asked for was done
//   1  failure: nothing (useful) was done: an input that cannot be read, no daemon, Xen refused,
//      an output that cannot be written, a start-up failure
//   2  usage: the command line or the configuration is wrong (scripts: fix the call, not the host)
//   3  partial: done, but not all of it: a damaged input reported up to the damage, implausible
//      records skipped, an output that failed part-way
//
// Each program documents it in its --help (and so its man page) with ExitStatusSection.
#pragma once

#include <string>
#include <string_view>

namespace cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitPartial = 3;

// What each status means for one program, after the shared meaning; an empty `partial` says the
// program never exits 3.
struct ExitMeanings {
  std::string_view ok;
  std::string_view failure;
  std::string_view usage;  // beyond "bad options or arguments"
  std::string_view partial;
};

// The "EXIT STATUS" help section: the shared convention, then this program's cases.
std::string ExitStatusSection(const ExitMeanings& meanings);

}  // namespace cli
