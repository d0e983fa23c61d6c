#include "xenbaked/config_file.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <map>
#include <optional>

namespace xenbaked {
namespace {

using tracefmt::ErrorCode;

bool IsBareKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

// One line being read: a cursor and the reason it stopped, if it did.
class LineReader {
 public:
  explicit LineReader(std::string_view line) : line_(line) {}

  bool Fail(std::string why) {
    if (!error_) error_ = std::move(why);
    return false;
  }
  const std::optional<std::string>& error() const { return error_; }
  bool AtEnd() const { return pos_ >= line_.size(); }
  char Peek() const { return AtEnd() ? '\0' : line_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && (line_[pos_] == ' ' || line_[pos_] == '\t')) ++pos_;
  }
  // After a value: spaces, then nothing or a comment.
  bool ExpectLineEnd() {
    SkipSpace();
    if (AtEnd() || Peek() == '#') return true;
    return Fail(fmt::format("unexpected '{}' after the value", line_.substr(pos_)));
  }

  bool ReadKey(std::string& key) {
    const size_t start = pos_;
    while (!AtEnd() && IsBareKeyChar(Peek())) ++pos_;
    key = line_.substr(start, pos_ - start);
    if (key.empty()) {
      if (Peek() == '"' || Peek() == '\'') return Fail("quoted keys are not supported");
      return Fail("expected a key (letters, digits, '-' and '_') at the start of the line");
    }
    SkipSpace();
    if (Peek() == '.')
      return Fail(
          fmt::format("dotted key '{}.…': tables are not supported, the file is flat", key));
    if (Peek() != '=') return Fail(fmt::format("expected '=' after the key '{}'", key));
    ++pos_;
    SkipSpace();
    return true;
  }

  // A string, number or boolean; `in_array` allows the value to end at ',' or ']'.
  bool ReadScalar(std::string& out) {
    const char c = Peek();
    if (c == '"') return ReadBasicString(out);
    if (c == '\'') return ReadLiteralString(out);
    const size_t start = pos_;
    while (!AtEnd() && !std::isspace(static_cast<unsigned char>(Peek())) && Peek() != ',' &&
           Peek() != ']' && Peek() != '#')
      ++pos_;
    const std::string_view word = line_.substr(start, pos_ - start);
    if (word.empty()) return Fail("expected a value");
    if (word == "true" || word == "false") {
      out = word;
      return true;
    }
    if (auto number = Number(word)) {
      out = *number;
      return true;
    }
    return Fail(fmt::format(
        "'{}' is not a value: strings are quoted (\"...\"), numbers are digits, booleans "
        "true or false",
        word));
  }

  bool ReadArray(std::vector<std::string>& out) {
    ++pos_;  // '['
    for (;;) {
      SkipSpace();
      if (AtEnd() || Peek() == '#')
        return Fail("unterminated array: an array must end with ']' on the same line");
      if (Peek() == ']') {
        ++pos_;
        return true;
      }
      if (Peek() == '[') return Fail("nested arrays are not supported");
      std::string item;
      if (!ReadScalar(item)) return false;
      out.push_back(std::move(item));
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != ']') {
        return Fail("expected ',' or ']' in the array");
      }
    }
  }

 private:
  // TOML integers and floats, decimal or 0x/0o/0b, with '_' between digits: the text without the
  // separators, or nullopt when it is not a number.
  static std::optional<std::string> Number(std::string_view word) {
    std::string digits;
    size_t i = 0;
    if (word[0] == '+' || word[0] == '-') digits += word[i++];
    const bool prefixed = word.size() > i + 1 && word[i] == '0' &&
                          (word[i + 1] == 'x' || word[i + 1] == 'o' || word[i + 1] == 'b');
    bool any_digit = false;
    bool last_was_digit = false;
    if (prefixed) {
      digits += word.substr(i, 2);
      i += 2;
    }
    for (; i < word.size(); ++i) {
      const char c = word[i];
      const bool digit = prefixed ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                                  : std::isdigit(static_cast<unsigned char>(c)) != 0;
      if (digit) {
        any_digit = true;
        last_was_digit = true;
        digits += c;
        continue;
      }
      if (c == '_' && last_was_digit && i + 1 < word.size() &&
          std::isxdigit(static_cast<unsigned char>(word[i + 1])) != 0) {
        last_was_digit = false;
        continue;
      }
      if (!prefixed && (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
        // Float syntax: a '+'/'-' only right after an exponent's 'e'.
        if ((c == '+' || c == '-') && !(digits.back() == 'e' || digits.back() == 'E'))
          return std::nullopt;
        last_was_digit = false;
        digits += c;
        continue;
      }
      return std::nullopt;
    }
    if (!any_digit || !std::isxdigit(static_cast<unsigned char>(digits.back())))
      return std::nullopt;
    return digits;
  }

  bool ReadBasicString(std::string& out) {
    if (line_.substr(pos_).starts_with("\"\"\""))
      return Fail("multi-line strings are not supported");
    ++pos_;
    while (!AtEnd()) {
      const char c = line_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t')
        return Fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (AtEnd()) break;
      const char e = line_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case 'b':
          out += '\b';
          break;
        case 't':
          out += '\t';
          break;
        case 'n':
          out += '\n';
          break;
        case 'f':
          out += '\f';
          break;
        case 'r':
          out += '\r';
          break;
        default:
          // Unicode escapes too: non-ASCII text is written as it is (UTF-8), and no escape can
          // smuggle a NUL into a path.
          return Fail(fmt::format("unsupported escape '\\{}' in a string", e));
      }
    }
    return Fail("unterminated string: no closing '\"' on this line");
  }

  bool ReadLiteralString(std::string& out) {
    if (line_.substr(pos_).starts_with("'''")) return Fail("multi-line strings are not supported");
    ++pos_;
    const size_t end = line_.find('\'', pos_);
    if (end == std::string_view::npos)
      return Fail("unterminated string: no closing \"'\" on this line");
    out = line_.substr(pos_, end - pos_);
    pos_ = end + 1;
    for (char c : out)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t')
        return Fail("control character in a string");
    return true;
  }

  std::string_view line_;
  size_t pos_ = 0;
  std::optional<std::string> error_;
};

}  // namespace

tracefmt::Result<std::vector<ConfigEntry>> ParseFlatConfig(std::string_view text,
                                                           const std::string& file_name) {
  auto fail = [&file_name](size_t line, std::string_view why) {
    return tracefmt::MakeError(ErrorCode::kInvalidArgument,
                               fmt::format("{} line {}: {}", file_name, line, why));
  };
  if (text.size() > kMaxConfigBytes)
    return tracefmt::MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{}: {} bytes, more than a configuration file may have ({})", file_name,
                    text.size(), kMaxConfigBytes));
  std::vector<ConfigEntry> entries;
  std::map<std::string, size_t> first_line;
  size_t number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    LineReader reader(line);
    reader.SkipSpace();
    if (reader.AtEnd() || reader.Peek() == '#') continue;
    if (reader.Peek() == '[')
      return fail(number,
                  fmt::format("'{}': tables are not supported, the file is flat key = value "
                              "lines",
                              line));
    ConfigEntry entry;
    entry.line = number;
    bool ok = reader.ReadKey(entry.key);
    if (ok && reader.AtEnd()) ok = reader.Fail("expected a value after '='");
    if (ok && reader.Peek() == '[') {
      entry.is_array = true;
      ok = reader.ReadArray(entry.values);
    } else if (ok) {
      ok = reader.ReadScalar(entry.values.emplace_back());
    }
    if (ok) ok = reader.ExpectLineEnd();
    if (!ok) return fail(number, *reader.error());
    if (auto [it, inserted] = first_line.emplace(entry.key, number); !inserted)
      return fail(number,
                  fmt::format("'{}' is set again (first on line {})", entry.key, it->second));
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace xenbaked
