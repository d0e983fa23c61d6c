// xenbaked/config_file.h — the strict reader of xenbaked's configuration file (--config): flat
// TOML, one `key = value` a line, comments and blank lines. What it does not understand is an
// error naming the file and the line, never ignored: a table (`[section]`), a dotted or quoted
// key, a key given twice, a bare word, an unterminated string, anything after the value.
//
// It knows the syntax only; which keys exist and what their values mean is the options' business
// (ParseOptions checks every key against its options and every value with the option's checks).
//
//   auto entries = ParseFlatConfig(text, "/etc/xenbaked/xenbaked.conf");
//   if (!entries) die(entries.error().Describe());   // "/etc/...conf line 7: unterminated string"
//   for (const ConfigEntry& e : *entries) use(e.key, e.values);
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tracefmt/result.h"

namespace xenbaked {

struct ConfigEntry {
  std::string key;
  // A scalar's text (a string unquoted and unescaped, a number or true/false as written, with
  // TOML's digit separators removed), or an array's elements in order.
  std::vector<std::string> values;
  bool is_array = false;
  size_t line = 0;  // 1-based
};

// The largest configuration file read: a configuration, not a data file.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Parses the whole file's text. `file_name` is only used in error messages.
tracefmt::Result<std::vector<ConfigEntry>> ParseFlatConfig(std::string_view text,
                                                           const std::string& file_name);

}  // namespace xenbaked
