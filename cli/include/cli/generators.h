// cli/generators.h — the man page and the bash completion data of a CLI::App, from the same
// options, descriptions and footer as its --help text.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace cli {

// A roff man page: NAME (the description's first line), SYNOPSIS, DESCRIPTION, OPTIONS (and
// COMMANDS with their options), then each upper-case footer section (EXIT STATUS, EXAMPLES, ...)
// as preformatted text.
std::string ManPage(const CLI::App& app, int section, const std::string& version);

// Bash assignments read by cli/xenbake-completion.bash: the program's options, the ones taking a
// value, their choices, and its subcommands with theirs.
std::string BashCompletionData(const CLI::App& app);

// The value name shown for an option ("FILE"), without CLI11's validator descriptions.
std::string ValueName(const CLI::Option& option);

// The choices of an option checked by CLI::IsMember, empty if none.
std::vector<std::string> Choices(const CLI::Option& option);

}  // namespace cli
