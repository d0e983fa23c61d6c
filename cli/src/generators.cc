#include "cli/generators.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "cli/command_line.h"

namespace cli {
namespace {

// Text as roff reads it: backslashes and hyphens escaped, no control line by accident.
std::string Roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out.push_back(c);
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "EXIT STATUS", "EXAMPLES": a footer line that starts a man page section.
bool IsHeading(const std::string& line) {
  if (line.empty() || !std::isupper(static_cast<unsigned char>(line[0]))) return false;
  for (char c : line)
    if (!(std::isupper(static_cast<unsigned char>(c)) || c == ' ' || c == '/' || c == '-'))
      return false;
  return true;
}

std::string Summary(const CLI::App& app) {
  std::string first =
      Lines(app.get_description()).empty() ? std::string() : Lines(app.get_description()).front();
  for (std::string_view dash : {" - ", " \u2014 "}) {
    const size_t at = first.find(dash);
    if (at != std::string::npos && first.compare(0, at, app.get_name()) == 0)
      first.erase(0, at + dash.size());
  }
  if (!first.empty() && first.back() == '.') first.pop_back();
  return first;
}

// The description after its first line, paragraphs apart.
std::string Description(const CLI::App& app) {
  const std::vector<std::string> lines = Lines(app.get_description());
  std::string out;
  bool paragraph = false;
  for (size_t i = lines.size() > 1 ? 1 : 0; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      paragraph = false;
      continue;
    }
    if (!paragraph) out += ".PP\n";
    paragraph = true;
    out += Roff(lines[i]) + "\n";
  }
  return out;
}

std::string OptionItems(const CLI::App& app) {
  std::string out;
  std::vector<const CLI::Option*> options = app.get_options();
  std::stable_partition(options.begin(), options.end(),
                        [](const CLI::Option* o) { return o->get_positional(); });
  for (const CLI::Option* opt : options) {
    if (opt->get_group().empty()) continue;  // hidden
    out += ".TP\n";
    if (opt->get_positional()) {
      out += "\\fI" + Roff(opt->get_name()) + "\\fR\n";
    } else {
      std::vector<std::string> names;
      for (const std::string& s : opt->get_snames()) names.push_back("\\fB\\-" + Roff(s) + "\\fR");
      for (const std::string& l : opt->get_lnames())
        names.push_back("\\fB\\-\\-" + Roff(l) + "\\fR");
      out += fmt::format("{}", fmt::join(names, ", "));
      if (!ValueName(*opt).empty()) out += " \\fI" + Roff(ValueName(*opt)) + "\\fR";
      out += "\n";
    }
    std::string text = opt->get_description();
    const std::string& def = opt->get_default_str();
    if (!ValueName(*opt).empty() && !def.empty() && def != "[]" &&
        text.find("default") == std::string::npos)
      text += " (default: " + def + ")";
    out += Roff(text) + "\n";
  }
  return out;
}

std::string FooterSections(const std::string& footer) {
  std::string out;
  bool open = false;
  for (const std::string& line : Lines(footer)) {
    if (IsHeading(line)) {
      if (open) out += ".fi\n";
      out += ".SH " + Roff(line) + "\n.nf\n";
      open = true;
      continue;
    }
    if (!open) {
      if (line.find_first_not_of(' ') == std::string::npos) continue;
      out += ".SH NOTES\n.nf\n";
      open = true;
    }
    if (line.find_first_not_of(' ') == std::string::npos) {
      out += ".sp\n";
      continue;
    }
    // The help indents section bodies by two; the man page indents them itself.
    out += Roff(line.starts_with("  ") ? line.substr(2) : line) + "\n";
  }
  if (open) out += ".fi\n";
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Words(const std::vector<std::string>& words) {
  return fmt::format("{}", fmt::join(words, " "));
}

// One program's (or subcommand's) options, under `key` ("xenbake-tbuf show").
std::string CompletionEntries(const CLI::App& app, const std::string& key) {
  std::vector<std::string> options, values;
  std::string choices;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional() || opt->get_group().empty()) continue;
    std::vector<std::string> names;
    for (const std::string& s : opt->get_snames()) names.push_back("-" + s);
    for (const std::string& l : opt->get_lnames()) names.push_back("--" + l);
    options.insert(options.end(), names.begin(), names.end());
    if (ValueName(*opt).empty()) continue;  // a flag
    values.insert(values.end(), names.begin(), names.end());
    const std::vector<std::string> c = Choices(*opt);
    if (c.empty()) continue;
    for (const std::string& n : names)
      choices += fmt::format("_xenbake_choices['{} {}']='{}'\n", key, n, Words(c));
  }
  return fmt::format("_xenbake_options['{}']='{}'\n_xenbake_values['{}']='{}'\n{}", key,
                     Words(options), key, Words(values), choices);
}

}  // namespace

std::string ValueName(const CLI::Option& option) {
  std::string name = option.get_type_name();
  name = name.substr(0, name.find(':'));
  return name;  // empty for a flag
}

std::vector<std::string> Choices(const CLI::Option& option) {
  const std::string type = option.get_type_name();
  const size_t open = type.find(":{");
  if (open == std::string::npos) return {};
  const size_t close = type.find('}', open);
  const std::string list = type.substr(open + 2, close - open - 2);
  if (close == std::string::npos || list.find("->") != std::string::npos) return {};
  std::vector<std::string> out;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

std::string ManPage(const CLI::App& app, int section, const std::string& version) {
  const std::string name = app.get_name();
  std::string usage = CLI::Formatter().make_usage(&app, name);
  const size_t at = usage.find(name);
  usage = at == std::string::npos ? std::string() : usage.substr(at + name.size());
  while (!usage.empty() && (usage.back() == '\n' || usage.back() == ' ')) usage.pop_back();
  std::string out = fmt::format(
      ".\\\" Generated by {} {} from its command-line definition; do not edit.\n"
      ".TH \"{}\" \"{}\" \"\" \"xenbaked {}\" \"xenbaked\"\n.SH NAME\n{} \\- {}\n"
      ".SH SYNOPSIS\n.B {}\n{}\n.SH DESCRIPTION\n{}",
      name, kManPageArgument, Upper(name), section, version, Roff(name), Roff(Summary(app)),
      Roff(name), Roff(usage.empty() ? std::string() : usage.substr(1)),
      Description(app).empty() ? Roff(Summary(app)) + ".\n" : Description(app));
  out += ".SH OPTIONS\n" + OptionItems(app);
  const std::vector<const CLI::App*> commands =
      app.get_subcommands([](const CLI::App*) { return true; });
  if (!commands.empty()) {
    out += ".SH COMMANDS\n";
    for (const CLI::App* sub : commands) {
      out += ".SS " + Roff(sub->get_name()) + "\n" + Roff(sub->get_description()) + "\n";
      out += OptionItems(*sub);
    }
  }
  out += FooterSections(app.get_footer());
  return out;
}

std::string BashCompletionData(const CLI::App& app) {
  const std::string name = app.get_name();
  std::string out = CompletionEntries(app, name);
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(sub->get_name());
    out += CompletionEntries(*sub, name + " " + sub->get_name());
  }
  out += fmt::format("_xenbake_commands['{}']='{}'\n", name, Words(commands));
  return out;
}

}  // namespace cli
