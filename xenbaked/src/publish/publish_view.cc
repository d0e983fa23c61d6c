#include "xenbaked/publish/publish_view.h"

namespace xenbaked::publish {

namespace {
uint64_t IncarnationKey(uint32_t domid, uint64_t instance) {
  return (uint64_t{domid} << 48) ^ instance;
}

// Length of the UTF-8 sequence starting with `lead`, 0 when `lead` cannot start one.
size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Decodes one well-formed sequence (no overlongs, no surrogates), or returns false.
bool DecodeUtf8(std::string_view s, size_t n, char32_t& cp) {
  const auto byte = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  if (n == 0 || n > s.size()) return false;
  if (n == 1) {
    cp = byte(0);
    return true;
  }
  cp = byte(0) & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  static constexpr char32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= kMinForLength[n] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

// Characters that control how text is shown rather than being text: they let a name pose as
// another (reordering, hiding) or corrupt a terminal.
bool IsUnsafe(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) ||  // C0, DEL, C1
         (cp >= 0x200B && cp <= 0x200F) ||           // zero-width, LRM/RLM
         (cp >= 0x202A && cp <= 0x202E) ||           // bidi embeddings and overrides
         (cp >= 0x2060 && cp <= 0x2064) ||           // word joiner, invisible operators
         (cp >= 0x2066 && cp <= 0x2069) ||           // bidi isolates
         cp == 0xFEFF || cp == 0x00AD;               // BOM / zero-width no-break, soft hyphen
}
}  // namespace

DomainCounters DomainCounters::Of(const DomainTotals& d) {
  return {.running_ns = d.running_ns,
          .runnable_ns = d.runnable_ns,
          .blocked_ns = d.blocked_ns,
          .offline_ns = d.offline_ns,
          .dispatches = d.dispatches,
          .run_slices = d.run_slices,
          .slice_sum_ns = d.slice_sum_ns,
          .allocated_ns = d.allocated_ns,
          .allocations = d.allocations,
          .wakes = d.wakes,
          .blocks = d.blocks,
          .hypercalls = d.hypercalls,
          .io_records = d.io_records,
          .lost_records = d.lost_records};
}

LatestWindow::LatestWindow(const WindowHistory& history, size_t length_index)
    : length_ns_(history.length_ns(length_index)) {
  const std::deque<Window>& closed = history.windows(length_index);
  if (closed.empty()) return;
  window_ = &closed.back();
  for (const DomainTotals& d : window_->delta.domains) {
    domains_[IncarnationKey(d.domid, d.instance)] = &d;
  }
  for (const CpuTotals& c : window_->delta.cpus) cpus_[c.cpu] = &c;
}

const DomainTotals* LatestWindow::Domain(uint32_t domid, uint64_t instance) const {
  auto it = domains_.find(IncarnationKey(domid, instance));
  return it == domains_.end() ? nullptr : it->second;
}

const CpuTotals* LatestWindow::Cpu(uint32_t cpu) const {
  auto it = cpus_.find(cpu);
  return it == cpus_.end() ? nullptr : it->second;
}

std::vector<LatestWindow> LatestWindows(const WindowHistory& history) {
  std::vector<LatestWindow> out;
  out.reserve(history.length_count());
  for (size_t i = 0; i < history.length_count(); ++i) out.emplace_back(history, i);
  return out;
}

std::string SanitizeName(std::string_view untrusted, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < untrusted.size()) {
    const size_t n = Utf8Length(static_cast<unsigned char>(untrusted[i]));
    char32_t cp = 0;
    const bool valid = DecodeUtf8(untrusted.substr(i), n, cp);
    const bool keep = valid && !IsUnsafe(cp);
    const size_t width = keep ? n : 1;
    if (out.size() + width > max_bytes) break;
    if (keep) {
      out.append(untrusted.substr(i, n));
    } else {
      out.push_back('?');
    }
    i += valid ? n : 1;
  }
  return out;
}

std::string DomainName(const DomainNames& names, uint32_t domid, size_t max_bytes) {
  auto it = names.find(domid);
  return it == names.end() ? std::string() : SanitizeName(it->second, max_bytes);
}

}  // namespace xenbaked::publish
