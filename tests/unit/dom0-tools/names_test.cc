#include <gtest/gtest.h>

#include "names/domain_name.h"

namespace xenbake {
namespace {

TEST(SanitizeDomainName, KeepsPrintableTextIncludingNonAscii) {
  EXPECT_EQ(SanitizeDomainName("web-01"), "web-01");
  EXPECT_EQ(SanitizeDomainName("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(SanitizeDomainName("\xe6\x97\xa5\xe6\x9c\xac"), "\xe6\x97\xa5\xe6\x9c\xac");
}

TEST(SanitizeDomainName, ReplacesTerminalEscapesAndControls) {
  EXPECT_EQ(SanitizeDomainName("a\x1b[2Jb"), "a?[2Jb");
  EXPECT_EQ(SanitizeDomainName("tab\there\nnl"), "tab?here?nl");
  EXPECT_EQ(SanitizeDomainName("del\x7f"), "del?");
  EXPECT_EQ(SanitizeDomainName("c1\xc2\x9b"), "c1?");  // U+009B, the 8-bit CSI
}

TEST(SanitizeDomainName, ReplacesBidiOverridesAndInvisibles) {
  EXPECT_EQ(SanitizeDomainName("evil\xe2\x80\xaegnp.exe"), "evil?gnp.exe");  // RLO
  EXPECT_EQ(SanitizeDomainName("a\xe2\x81\xa6"
                               "b"),
            "a?b");                                                    // LRI
  EXPECT_EQ(SanitizeDomainName("Domain\xe2\x80\x8b-0"), "Domain?-0");  // ZWSP
  EXPECT_EQ(SanitizeDomainName("\xef\xbb\xbfx"), "?x");                // BOM
}

TEST(SanitizeDomainName, ReplacesMalformedUtf8) {
  EXPECT_EQ(SanitizeDomainName("a\xff"
                               "b"),
            "a?b");
  EXPECT_EQ(SanitizeDomainName("\xc0\xaf"), "??");        // overlong '/'
  EXPECT_EQ(SanitizeDomainName("\xed\xa0\x80"), "???");   // a surrogate
  EXPECT_EQ(SanitizeDomainName("cut\xe2\x82"), "cut??");  // truncated sequence
}

TEST(SanitizeDomainName, CutsLongNames) {
  const std::string name = SanitizeDomainName(std::string(200, 'x'));
  EXPECT_EQ(name, std::string(kMaxDomainNameCodePoints, 'x') + "\u2026");
}

TEST(DomainLabel, ShowsTheIdBesideTheName) {
  EXPECT_EQ(DomainLabel(1, "g1"), "domain 1 (g1)");
  EXPECT_EQ(DomainLabel(5, ""), "domain 5");
  EXPECT_EQ(DomainLabel(32767, "whatever"), "idle");
  // A guest calling itself Domain-0 still shows its own id.
  EXPECT_EQ(DomainLabel(7, "Domain-0"), "domain 7 (Domain-0)");
}

TEST(DisplayWidth, CountsWideCharactersTwice) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("\xe6\x97\xa5\xe6\x9c\xac"), 4u);
  EXPECT_EQ(FitToWidth("\xe6\x97\xa5\xe6\x9c\xac", 3), "\xe6\x97\xa5");
  EXPECT_EQ(FitToWidth("abcdef", 4), "abcd");
  EXPECT_EQ(FitToWidth("ab", 10), "ab");
}

TEST(ParseDomainNameAssignment, AcceptsIdEqualsName) {
  const auto a = ParseDomainNameAssignment("12=web=1");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first, 12u);
  EXPECT_EQ(a->second, "web=1");
  EXPECT_FALSE(ParseDomainNameAssignment("web").has_value());
  EXPECT_FALSE(ParseDomainNameAssignment("=web").has_value());
  EXPECT_FALSE(ParseDomainNameAssignment("x1=web").has_value());
  EXPECT_FALSE(ParseDomainNameAssignment("40000=web").has_value());
}

}  // namespace
}  // namespace xenbake
