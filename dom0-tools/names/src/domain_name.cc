#include "names/domain_name.h"

#include <fmt/format.h>

#include <charconv>

namespace xenbake {
namespace {

constexpr char32_t kInvalid = 0xFFFFFFFF;
constexpr uint32_t kIdleDomain = 32767;

// Decodes one UTF-8 code point at `text[pos]`, advancing `pos`. Overlong forms, surrogates and
// values past U+10FFFF are kInvalid, and `pos` then advances by one byte only.
char32_t DecodeUtf8(std::string_view text, size_t& pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  size_t length = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (lead < 0x80) {
    ++pos;
    return lead;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    ++pos;
    return kInvalid;
  }
  if (pos + length > text.size()) {
    ++pos;
    return kInvalid;
  }
  for (size_t i = 1; i < length; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) {
      ++pos;
      return kInvalid;
    }
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++pos;
    return kInvalid;
  }
  pos += length;
  return cp;
}

bool IsUnsafe(char32_t cp) {
  if (cp == kInvalid) return true;
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return true;  // C0, DEL, C1 controls
  if (cp == 0x00AD || cp == 0x034F || cp == 0x061C || cp == 0x115F || cp == 0x1160 ||
      cp == 0x180E || cp == 0x3164 || cp == 0xFEFF || cp == 0xFFA0) {
    return true;  // soft hyphen, grapheme joiner, ALM, Hangul fillers, Mongolian separator, BOM
  }
  if (cp >= 0x200B && cp <= 0x200F) return true;    // ZWSP, ZWNJ, ZWJ, LRM, RLM
  if (cp >= 0x2028 && cp <= 0x202E) return true;    // separators, LRE, RLE, PDF, LRO, RLO
  if (cp >= 0x2060 && cp <= 0x206F) return true;    // word joiner, invisible operators, LRI…PDI
  if (cp >= 0xFFF0 && cp <= 0xFFFB) return true;    // interlinear annotation controls
  if (cp >= 0xE0000 && cp <= 0xE007F) return true;  // tag characters
  return false;
}

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t CodePointWidth(char32_t cp) {
  if (cp >= 0x0300 && cp <= 0x036F) return 0;  // combining diacritics
  const bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                    (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                    (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                    (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
                    (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD);
  return wide ? 2 : 1;
}

}  // namespace

std::string SanitizeDomainName(std::string_view untrusted) {
  std::string out;
  size_t pos = 0;
  size_t kept = 0;
  while (pos < untrusted.size()) {
    if (kept == kMaxDomainNameCodePoints) {
      out += "\u2026";
      break;
    }
    const char32_t cp = DecodeUtf8(untrusted, pos);
    AppendUtf8(out, IsUnsafe(cp) ? U'?' : cp);
    ++kept;
  }
  return out;
}

std::string DomainLabel(uint32_t domid, std::string_view untrusted_name) {
  if (domid == kIdleDomain) return "idle";
  const std::string name = SanitizeDomainName(untrusted_name);
  if (name.empty()) return fmt::format("domain {}", domid);
  return fmt::format("domain {} ({})", domid, name);
}

size_t DisplayWidth(std::string_view sanitized) {
  size_t width = 0;
  size_t pos = 0;
  while (pos < sanitized.size()) width += CodePointWidth(DecodeUtf8(sanitized, pos));
  return width;
}

std::string FitToWidth(std::string_view sanitized, size_t columns) {
  size_t width = 0;
  size_t pos = 0;
  while (pos < sanitized.size()) {
    size_t next = pos;
    const size_t w = CodePointWidth(DecodeUtf8(sanitized, next));
    if (width + w > columns) break;
    width += w;
    pos = next;
  }
  return std::string(sanitized.substr(0, pos));
}

std::optional<std::pair<uint32_t, std::string>> ParseDomainNameAssignment(std::string_view text) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  uint32_t domid = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + eq, domid);
  if (ec != std::errc{} || end != text.data() + eq || domid > kIdleDomain) return std::nullopt;
  return std::pair{domid, std::string(text.substr(eq + 1))};
}

}  // namespace xenbake
