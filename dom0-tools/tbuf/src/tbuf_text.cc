#include "tbuf/tbuf_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "tracefmt/events.h"
#include "xenbaked/tbuf_advice.h"

namespace xenbake::tbuf {
namespace {

constexpr uint32_t kPageBytes = 4096;
constexpr uint32_t kMaxPages = 1u << 20;

std::optional<uint32_t> ParseNumber(std::string_view text, int base = 10) {
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::vector<uint32_t>> ParseHexBitmap(std::string_view hex) {
  std::vector<uint32_t> cpus;
  uint32_t bit = 0;
  for (auto it = hex.rbegin(); it != hex.rend(); ++it, bit += 4) {
    const std::optional<uint32_t> nibble = ParseNumber(std::string_view(&*it, 1), 16);
    if (!nibble) return std::nullopt;
    for (uint32_t b = 0; b < 4; ++b) {
      if (*nibble & (1u << b)) {
        if (bit + b > kMaxCpuId) return std::nullopt;
        cpus.push_back(bit + b);
      }
    }
  }
  std::sort(cpus.begin(), cpus.end());
  return cpus;
}

std::string Kib(uint64_t bytes) {
  return fmt::format("{} KiB", bytes / 1024);
}

}  // namespace

std::optional<std::vector<uint32_t>> ParseCpuList(std::string_view text, uint32_t max_cpu_id) {
  if (text == "all") {
    std::vector<uint32_t> all(std::min(max_cpu_id, kMaxCpuId) + 1);
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
  if (text.starts_with("0x") || text.starts_with("0X")) {
    if (text.size() == 2) return std::nullopt;
    return ParseHexBitmap(text.substr(2));
  }
  std::vector<uint32_t> cpus;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return std::nullopt;  // trailing comma
    const size_t dash = item.find('-');
    const std::optional<uint32_t> first = ParseNumber(item.substr(0, dash));
    const std::optional<uint32_t> last =
        dash == std::string_view::npos ? first : ParseNumber(item.substr(dash + 1));
    if (!first || !last || *first > *last || *last > kMaxCpuId) return std::nullopt;
    for (uint32_t cpu = *first; cpu <= *last; ++cpu) cpus.push_back(cpu);
  }
  if (cpus.empty()) return std::nullopt;
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string FormatCpuList(std::span<const uint32_t> cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

std::optional<uint32_t> ParsePages(std::string_view text) {
  const std::optional<uint32_t> pages = ParseNumber(text);
  if (!pages || *pages == 0 || *pages > kMaxPages) return std::nullopt;
  return pages;
}

std::string DescribeEventMask(uint32_t mask) {
  if ((mask & tracefmt::ev::kAll) == tracefmt::ev::kAll) return fmt::format("{:#010x} (all)", mask);
  std::string classes;
  for (uint32_t bit = 0; bit < 12; ++bit) {
    const uint32_t class_bits = 1u << bit;
    if ((tracefmt::EventClassBits(mask) & class_bits) == 0) continue;
    if (!classes.empty()) classes += ", ";
    const std::string_view name =
        tracefmt::EventClassName((class_bits << tracefmt::ev::kClassShift) | 0xf000);
    classes += name == "unknown" ? fmt::format("class {:#x}", class_bits) : std::string(name);
  }
  if (classes.empty()) classes = "nothing";
  const uint32_t subclasses = tracefmt::EventSubclassBits(mask);
  if (subclasses != 0xf) classes += fmt::format(", subclasses {:#x}", subclasses);
  return fmt::format("{:#010x} ({})", mask, classes);
}

std::string FormatState(const TraceBufferState& s) {
  std::string out;
  if (s.pages_per_cpu) {
    out += fmt::format("buffers:     {} pages per CPU ({}), allocated\n", *s.pages_per_cpu,
                       Kib(uint64_t{*s.pages_per_cpu} * kPageBytes));
  } else {
    out += "buffers:     not allocated (the first enable, or tbuf_size= at boot, allocates them)\n";
  }
  out +=
      fmt::format("event mask:  {}\n", s.event_mask ? DescribeEventMask(*s.event_mask) : "unknown");
  out += fmt::format("CPUs:        {} online, highest id {}; buffers on {}\n", s.host.nr_cpus,
                     s.host.max_cpu_id,
                     s.cpus_with_buffers ? FormatCpuList(*s.cpus_with_buffers)
                                         : std::string(s.pages_per_cpu ? "unknown" : "none"));
  out +=
      "tracing:     Xen does not report whether tracing is on (nor the CPU mask); "
      "xenbaked's health shows whether records arrive\n";
  out += fmt::format("cpu_khz:     {}\n", s.host.cpu_khz);
  // The size a host needs depends on its load and on how fast the consumer drains, which only a
  // running consumer measures: the daemon publishes the figure, this tool gives the rule.
  out += fmt::format(
      "sizing:      Xen interrupts the consumer at half full; a CPU's buffer needs pages >= "
      "(4 x peak bytes/s x worst drain latency + 8) / 4096 (a 2x margin on the latency). xenbaked "
      "measures both and publishes the answer (health: tbuf_advice; metric: "
      "xenbaked_recommended_tbuf_pages). Set it as tbuf_size=N on Xen's command line: Xen "
      "allocates the buffers once per boot. Largest Xen accepts on this host: {} pages\n",
      xenbaked::XenMaxTbufPages(s.host.max_cpu_id + 1));
  return out;
}

nlohmann::json StateJson(const TraceBufferState& s) {
  nlohmann::json j = {
      {"allocated", s.pages_per_cpu.has_value()}, {"nr_cpus", s.host.nr_cpus},
      {"max_cpu_id", s.host.max_cpu_id},          {"cpu_khz", s.host.cpu_khz},
      {"t_info_bytes", s.t_info_bytes},           {"enabled", nullptr},  // Xen does not report it
  };
  j["pages_per_cpu"] = s.pages_per_cpu ? nlohmann::json(*s.pages_per_cpu) : nlohmann::json();
  j["bytes_per_cpu"] =
      s.pages_per_cpu ? nlohmann::json(uint64_t{*s.pages_per_cpu} * kPageBytes) : nlohmann::json();
  j["event_mask"] =
      s.event_mask ? nlohmann::json(fmt::format("{:#010x}", *s.event_mask)) : nlohmann::json();
  j["max_pages_per_cpu"] = xenbaked::XenMaxTbufPages(s.host.max_cpu_id + 1);
  j["cpus_with_buffers"] =
      s.cpus_with_buffers ? nlohmann::json(*s.cpus_with_buffers) : nlohmann::json();
  return j;
}

}  // namespace xenbake::tbuf
