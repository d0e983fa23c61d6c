#include "cli/command_line.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "cli/exit_status.h"
#include "cli/generators.h"

namespace cli {
namespace {

// CLI11's default help shows an option's value as its type and every validator's description
// ("ENUM:value in {file->1,merged->0} OR {1,0}") and defaults as "=VALUE": here the value gets a
// name ("FORMAT") and the default goes into the description, where a person reads it.
class HelpFormatter final : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (!opt->get_option_text().empty()) return " " + opt->get_option_text();
    if (ValueName(*opt).empty()) return {};  // a flag
    // A positional is its own value name ("FILE"), not "FILE FILE".
    std::string out =
        opt->get_positional() && ValueName(*opt) == opt->get_name() ? "" : " " + ValueName(*opt);
    if (opt->get_expected_max() >= CLI::detail::expected_max_vector_size) out += " ...";
    if (opt->get_required()) out += " (required)";
    return out;
  }
  // "-f,--format", without CLI11's "{false}" after a negated flag.
  std::string make_option_name(const CLI::Option* opt, bool is_positional) const override {
    if (is_positional) return opt->get_name(true, false);
    std::vector<std::string> names;
    for (const std::string& s : opt->get_snames()) names.push_back("-" + s);
    for (const std::string& l : opt->get_lnames()) names.push_back("--" + l);
    return CLI::detail::join(names, ",");
  }
  std::string make_description(const CLI::App* app) const override {
    const std::string text = app->get_description();
    return text.empty() ? std::string() : text + "\n\n";
  }
  std::string make_option_desc(const CLI::Option* opt) const override {
    std::string text = opt->get_description();
    const std::string& def = opt->get_default_str();
    if (!ValueName(*opt).empty() && !def.empty() && def != "[]" &&
        text.find("default") == std::string::npos)
      text += " (default: " + def + ")";
    return text;
  }
};

}  // namespace

void Configure(CLI::App& app, const std::string& name) {
  app.name(name);
  app.formatter(std::make_shared<HelpFormatter>());
  app.get_formatter()->column_width(30);
  app.set_version_flag("--version", name + " " XENBAKED_VERSION, "Print the version and exit");
  app.set_help_flag("-h,--help", "Print this help and exit");
}

CLI::Option* AddFormat(CLI::App& app, std::string& format, const std::vector<std::string>& choices,
                       const std::string& description) {
  format = choices.front();
  return app.add_option(std::string(kFormatFlags), format, description)
      ->check(CLI::IsMember(choices))
      ->type_name("FORMAT")
      ->default_str(choices.front());
}

CLI::Option* AddOutput(CLI::App& app, std::string& path, const std::string& what) {
  path = "-";
  return app
      .add_option(std::string(kOutputFlags), path,
                  "Write " + what + " to FILE; - for standard output")
      ->type_name("FILE")
      ->default_str("-");
}

std::optional<std::string> GeneratedText(const CLI::App& app, int argc, const char* const* argv,
                                         int man_section) {
  if (argc != 2) return std::nullopt;
  const std::string_view arg = argv[1];
  if (arg == kManPageArgument) return ManPage(app, man_section, XENBAKED_VERSION);
  if (arg == kCompletionArgument) return BashCompletionData(app);
  return std::nullopt;
}

std::optional<int> Parse(CLI::App& app, int argc, const char* const* argv, std::FILE* out,
                         std::FILE* err, int man_section) {
  if (std::optional<std::string> text = GeneratedText(app, argc, argv, man_section)) {
    std::fputs(text->c_str(), out);
    return kExitOk;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out_text;
    std::ostringstream err_text;
    const int status = app.exit(e, out_text, err_text);
    std::fputs(out_text.str().c_str(), out);
    std::fputs(err_text.str().c_str(), err);
    return status == 0 ? kExitOk : kExitUsage;
  }
  return std::nullopt;
}

OutputFile::OutputFile(const std::string& path, std::FILE* standard_output) : path_(path) {
  if (path == "-") {
    file_ = standard_output;
    return;
  }
  file_ = std::fopen(path.c_str(), "we");
  owned_ = file_ != nullptr;
  if (!file_) error_ = "cannot write " + path + ": " + std::strerror(errno);
}

OutputFile::~OutputFile() {
  if (owned_) std::fclose(file_);
}

bool OutputFile::Finish() {
  if (!file_) return false;
  bool ok = std::fflush(file_) == 0 && !std::ferror(file_);
  if (owned_) {
    ok = std::fclose(file_) == 0 && ok;
    owned_ = false;
  }
  if (!ok && error_.empty()) error_ = "cannot write " + path_ + ": " + std::strerror(errno);
  return ok;
}

std::optional<int> RefuseOutputOverInput(std::string_view program,
                                         const std::vector<std::string>& outputs,
                                         const std::vector<std::string>& inputs, std::FILE* err) {
  for (const std::string& output : outputs) {
    if (output.empty() || output == "-") continue;
    struct stat out_st {};
    const bool out_exists = ::stat(output.c_str(), &out_st) == 0;
    for (const std::string& input : inputs) {
      if (input.empty() || input == "-") continue;
      struct stat in_st {};
      const bool same =
          output == input || (out_exists && ::stat(input.c_str(), &in_st) == 0 &&
                              in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino);
      if (!same) continue;
      std::fprintf(err,
                   "%.*s: the output %s is the input %s: it would be destroyed before it is read\n",
                   static_cast<int>(program.size()), program.data(), output.c_str(), input.c_str());
      return kExitUsage;
    }
  }
  return std::nullopt;
}

namespace {
// 0.05, 3600, 1e+09: short, as a person would write them.
std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

CLI::Validator FiniteRange(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        double value = 0;
        const char* begin = text.c_str();
        char* end = nullptr;
        errno = 0;
        value = std::strtod(begin, &end);
        if (end == begin || *end != '\0' || errno == ERANGE || !std::isfinite(value))
          return "'" + text.substr(0, 40) + "' is not a finite number";
        if (value < min || value > max)
          return "'" + text.substr(0, 40) + "' is not from " + FormatNumber(min) + " to " +
                 FormatNumber(max);
        return {};
      },
      "NUMBER");
}

int WithOutput(const std::string& path, std::FILE* standard_output, std::FILE* err,
               std::string_view program, const std::function<int(std::FILE*)>& run) {
  OutputFile output(path, standard_output);
  if (!output.file()) {
    std::fprintf(err, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
                 output.error().c_str());
    return kExitFailure;
  }
  const int status = run(output.file());
  if (!output.Finish()) {
    std::fprintf(err, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
                 output.error().c_str());
    return kExitFailure;
  }
  return status;
}

}  // namespace cli
