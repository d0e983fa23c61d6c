// cli/command_line.h — what every xenbaked program does with its command line the same way:
// help text (option value names without CLI11's validator internals, defaults in the
// description), --version, parse errors (exit status 2, "Run with --help"), the output file
// (-o, --output), and the build-time generators of the man page and the bash completion, which
// walk the same CLI::App the --help text comes from.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cli {

// The formats every tool spells the same way: -f, --format FORMAT.
inline constexpr std::string_view kFormatFlags = "-f,--format";
inline constexpr std::string_view kOutputFlags = "-o,--output";

// Sets the program's name, the help formatter and --version ("NAME VERSION").
void Configure(CLI::App& app, const std::string& name);

// Adds -f,--format FORMAT with these choices (the first is the default).
CLI::Option* AddFormat(CLI::App& app, std::string& format, const std::vector<std::string>& choices,
                       const std::string& description);

// Adds -o,--output FILE ("-", the default, is standard output).
CLI::Option* AddOutput(CLI::App& app, std::string& path, const std::string& what);

// Hidden build-time generators, recognised only as the sole argument: the man page (roff) and the
// bash completion data of `app`. They are not options of the program and are not listed.
inline constexpr std::string_view kManPageArgument = "--generate-man-page";
inline constexpr std::string_view kCompletionArgument = "--generate-bash-completion";

// If argv is one of the generator arguments, the generated text; otherwise nullopt.
std::optional<std::string> GeneratedText(const CLI::App& app, int argc, const char* const* argv,
                                         int man_section);

// Parses argv. nullopt: carry on. A status: return it now (0 after --help, --version or a
// generator, 2 after a usage error, whose message is on `err`).
std::optional<int> Parse(CLI::App& app, int argc, const char* const* argv, std::FILE* out,
                         std::FILE* err, int man_section = 1);

// An output chosen with -o: standard output for "-", else the file, created or truncated.
class OutputFile {
 public:
  // Null file() and error() set when the file cannot be opened.
  explicit OutputFile(const std::string& path, std::FILE* standard_output = stdout);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  std::FILE* file() const { return file_; }
  const std::string& error() const { return error_; }
  // Flushes and closes; false (with error()) when anything written was not stored.
  bool Finish();

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  std::string error_;
};

// An output that is one of the inputs (by name, through a link, or as another name of the same
// file) would be truncated before it is read: refused before anything is opened. Returns the
// usage status after saying "PROGRAM: the output PATH is the input PATH" on `err`, or nullopt
// when no output is an input. "-" and empty outputs are never inputs.
std::optional<int> RefuseOutputOverInput(std::string_view program,
                                         const std::vector<std::string>& outputs,
                                         const std::vector<std::string>& inputs, std::FILE* err);

// A number option's check that also refuses what is not a finite number ("nan", "inf"), which
// CLI::Range lets through (every comparison with NaN is false).
CLI::Validator FiniteRange(double min, double max);

// Runs `run` on the output chosen with -o (`standard_output` for "-"): an output that cannot be
// opened or written is a failure, said on `err` as "PROGRAM: cannot write PATH: why".
int WithOutput(const std::string& path, std::FILE* standard_output, std::FILE* err,
               std::string_view program, const std::function<int(std::FILE*)>& run);

}  // namespace cli
