#include "xenbaked/log.h"

#include <unistd.h>

#include <array>
#include <cstdio>

namespace xenbaked {
namespace {
constexpr std::array<std::pair<std::string_view, LogLevel>, 6> kLevelNames{{
    {"error", LogLevel::kError},
    {"warning", LogLevel::kWarning},
    {"warn", LogLevel::kWarning},
    {"notice", LogLevel::kNotice},
    {"info", LogLevel::kInfo},
    {"debug", LogLevel::kDebug},
}};
}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view text) {
  for (const auto& [name, level] : kLevelNames)
    if (name == text) return level;
  return std::nullopt;
}

std::string_view LogLevelName(LogLevel level) {
  for (const auto& [name, l] : kLevelNames)
    if (l == level) return name;
  return "info";
}

Logger::Logger(LogLevel level, bool journal_prefix) : level_(level) {
  sink_ = [journal_prefix](LogLevel l, std::string_view line) {
    std::string out = journal_prefix ? fmt::format("<{}>xenbaked: {}\n", static_cast<int>(l), line)
                                     : fmt::format("xenbaked: {}: {}\n", LogLevelName(l), line);
    // One write per line so lines from a dying process are never interleaved half-way.
    ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
    (void)ignored;
  };
}

}  // namespace xenbaked
