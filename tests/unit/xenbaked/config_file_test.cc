// ParseFlatConfig: the syntax of xenbaked's configuration file, flat TOML. Anything it does not
// understand is an error naming the file and line, never skipped.
#include "xenbaked/config_file.h"

#include <gtest/gtest.h>

#include <string>

namespace xenbaked {
namespace {

std::string ErrorOf(std::string_view text) {
  auto parsed = ParseFlatConfig(text, "x.conf");
  if (parsed) return "accepted";
  return parsed.error().message;
}

TEST(FlatConfig, ReadsScalarsArraysCommentsAndBlankLines) {
  auto parsed = ParseFlatConfig(
      "# comment\n\n  pages = 32 # why\nname = \"a \\\"b\\\" \xc3\xa9\"\nraw = 'c:\\d'\n"
      "on = false\nlist = [ 1, 2_000 , 0x2f000 ]\nratio = -1.5e3\n",
      "x.conf");
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 6u);
  EXPECT_EQ((*parsed)[0].key, "pages");
  EXPECT_EQ((*parsed)[0].values, std::vector<std::string>{"32"});
  EXPECT_EQ((*parsed)[0].line, 3u);
  EXPECT_EQ((*parsed)[1].values, std::vector<std::string>{"a \"b\" \xc3\xa9"});
  EXPECT_EQ((*parsed)[2].values, std::vector<std::string>{"c:\\d"});
  EXPECT_EQ((*parsed)[3].values, std::vector<std::string>{"false"});
  EXPECT_TRUE((*parsed)[4].is_array);
  EXPECT_EQ((*parsed)[4].values, (std::vector<std::string>{"1", "2000", "0x2f000"}));
  EXPECT_EQ((*parsed)[5].values, std::vector<std::string>{"-1.5e3"});
}

TEST(FlatConfig, WhatItCannotReadIsAnErrorWithTheLine) {
  for (std::string_view bad : {
           "[section]",                   // a table
           "[[servers]]",                 // an array of tables
           "a.b = 1",                     // a dotted key
           "\"quoted\" = 1",              // a quoted key
           "garbage",                     // no '='
           "key =",                       // no value
           "key = bare-word",             // an unquoted string
           "key = \"unterminated",        // the string never ends
           "key = 'unterminated",         //
           "key = \"\"\"multi\"\"\"",     // multi-line strings
           "key = 1 2",                   // something after the value
           "key = [1, 2",                 // the array never ends
           "key = [[1]]",                 // nested arrays
           "key = \"bad \\q escape\"",    // an unknown escape
           "key = \"nul \\u0000 here\"",  // unicode escapes: unsupported (a NUL would cut a path
                                          // short)
           "key = 1__0",                  // a separator not between digits
           "key = 0x",                    // no digits
       }) {
    const std::string text = "ok = 1\n" + std::string(bad) + "\n";
    const std::string message = ErrorOf(text);
    EXPECT_NE(message.find("x.conf line 2"), std::string::npos) << bad << " -> " << message;
  }
  EXPECT_NE(ErrorOf("a = 1\na = 2\n").find("line 2"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMaxConfigBytes + 1, '#')).find("x.conf"), std::string::npos);
}

}  // namespace
}  // namespace xenbaked
