#include "cli/exit_status.h"

#include <fmt/format.h>

#include <sstream>

namespace cli {
namespace {

constexpr size_t kWidth = 96;
constexpr std::string_view kIndent = "     ";  // under the text after "  N  "

// "  N  TEXT", wrapped at kWidth with the continuation lines under TEXT.
std::string Item(int status, const std::string& text) {
  std::string out = fmt::format("  {}  ", status);
  size_t column = out.size();
  std::istringstream words(text);
  bool first = true;
  for (std::string word; words >> word;) {
    if (!first && column + 1 + word.size() > kWidth) {
      out += '\n';
      out.append(kIndent);
      column = kIndent.size();
    } else if (!first) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    first = false;
  }
  out += '\n';
  return out;
}

std::string With(std::string_view shared, std::string_view specific, std::string_view joint) {
  return specific.empty() ? std::string(shared) : fmt::format("{}{}{}", shared, joint, specific);
}

}  // namespace

std::string ExitStatusSection(const ExitMeanings& m) {
  std::string out = "\nEXIT STATUS\n";
  out += Item(kExitOk, With("success", m.ok, ": "));
  out += Item(kExitFailure, With("failure, nothing useful done", m.failure, ": "));
  out += Item(kExitUsage, With("usage: bad options or arguments", m.usage, "; also "));
  if (!m.partial.empty()) out += Item(kExitPartial, With("partly done", m.partial, ": "));
  out +=
      "  Every xenbaked program uses these statuses: 1 means it did nothing useful, 2 that the\n"
      "  command line or configuration is wrong, 3 that what it printed is incomplete.\n";
  return out;
}

}  // namespace cli
