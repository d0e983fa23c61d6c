// names/domain_name.h — domain names made safe to show, and labelled with their ids.
//
// A guest's name comes from xenstore, where the guest's own toolstack user sets it: it is
// untrusted text. Shown raw, a name could carry terminal escapes, reorder the line with bidi
// overrides, hide characters, or pose as another domain ("Domain-0"). Every dom0 tool shows names
// through these functions, and always next to the id.
//
//   std::string safe = xenbake::SanitizeDomainName(untrusted_name);   // "g1", "bad?name"
//   std::string label = xenbake::DomainLabel(1, untrusted_name);      // "domain 1 (g1)"
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace xenbake {

// Longest name kept, in code points; longer names are cut and end in "…".
inline constexpr size_t kMaxDomainNameCodePoints = 64;

// Valid UTF-8 with every control character (C0, DEL, C1), bidi control (LRE…RLO, LRI…PDI, LRM,
// RLM, ALM), invisible or zero-width character (ZWSP, ZWJ, word joiner, BOM, soft hyphen, …) and
// every malformed byte replaced by '?'. Printable text, including non-ASCII letters, is kept.
std::string SanitizeDomainName(std::string_view untrusted);

// "domain 1 (g1)", "domain 7" when the name is empty, "idle" for the idle domain (32767).
std::string DomainLabel(uint32_t domid, std::string_view untrusted_name);

// Display columns of sanitised UTF-8 text (wide East Asian characters count two).
size_t DisplayWidth(std::string_view sanitized);

// Cuts sanitised UTF-8 text to at most `columns` display columns, never inside a character.
std::string FitToWidth(std::string_view sanitized, size_t columns);

// "ID=NAME" as given on a command line (--name 1=g1): the id (0–32767) and the raw name, or
// nullopt when the text has no '=' or the id is not a domain id.
std::optional<std::pair<uint32_t, std::string>> ParseDomainNameAssignment(std::string_view text);

}  // namespace xenbake
