#include "render.h"

#include <fmt/format.h>

#include <iterator>

#include "tracefmt/events.h"
#include "tracefmt/fields.h"

namespace dom0tools {

using tracefmt::MergedRecord;
using tracefmt::TraceSummary;
using tracefmt::TscClock;

namespace {

std::string HexWord(uint32_t word) {
  return fmt::format("{:#010x}", word);
}

}  // namespace

std::string RecordText(const MergedRecord& m, const TscClock* clock) {
  const tracefmt::Record& rec = m.rec;
  std::string line = fmt::format("off={} cpu={} ", m.file_offset, m.cpu);
  auto out = std::back_inserter(line);
  if (rec.has_tsc) {
    fmt::format_to(out, "tsc={}", rec.tsc);
    if (clock != nullptr) fmt::format_to(out, " ns={}", clock->ToNs(rec.tsc));
  } else {
    line += "tsc=-";
  }
  fmt::format_to(out, " {}", tracefmt::EventLabel(rec.event));
  const tracefmt::RecordFields fields = tracefmt::DecodeFields(rec);
  if (fields.count > 0) {
    for (const tracefmt::Field& f : fields.view()) {
      if (f.symbol.empty()) {
        fmt::format_to(out, " {}={}", f.name, f.value);
      } else {
        fmt::format_to(out, " {}={}", f.name, f.symbol);
      }
    }
  } else if (rec.extra_words > 0) {
    line += " words=";
    for (size_t i = 0; i < rec.extra_words; ++i) {
      if (i > 0) line += ',';
      line += HexWord(rec.extra[i]);
    }
  }
  return line;
}

nlohmann::ordered_json RecordJson(const MergedRecord& m, const TscClock* clock) {
  const tracefmt::Record& rec = m.rec;
  nlohmann::ordered_json j;
  j["off"] = m.file_offset;
  j["cpu"] = m.cpu;
  if (rec.has_tsc) {
    j["tsc"] = rec.tsc;
    if (clock != nullptr) j["ns"] = clock->ToNs(rec.tsc);
  } else {
    j["tsc"] = nullptr;
  }
  j["event"] = HexWord(rec.event);
  const std::string_view name = tracefmt::EventName(rec.event);
  if (!name.empty()) j["name"] = name;
  j["class"] = tracefmt::EventClassName(rec.event);
  const tracefmt::RecordFields fields = tracefmt::DecodeFields(rec);
  if (fields.count > 0) {
    nlohmann::ordered_json& f = j["fields"];
    for (const tracefmt::Field& field : fields.view()) {
      const std::string key(field.name);
      if (field.symbol.empty()) {
        f[key] = field.value;
      } else {
        f[key] = field.symbol;
      }
    }
  }
  nlohmann::ordered_json data = nlohmann::ordered_json::array();
  for (uint32_t word : rec.Data()) data.push_back(word);
  j["data"] = std::move(data);
  return j;
}

namespace {

std::string Seconds(const TscClock* clock, uint64_t ticks) {
  if (clock == nullptr) return "";
  return fmt::format(" ({:.3f} s)", static_cast<double>(clock->ToNs(ticks)) / 1e9);
}

}  // namespace

std::string SummaryText(const TraceSummary& s, std::string_view path, const TscClock* clock) {
  std::string text;
  auto out = std::back_inserter(text);
  fmt::format_to(out, "file                {} ({} bytes)\n", path, s.file_bytes);
  fmt::format_to(out, "records             {} (CPU_CHANGE included)\n", s.records);
  fmt::format_to(out, "cpu_change_records  {}\n", s.cpu_change_records);
  fmt::format_to(out, "wrap_records        {}\n", s.wrap_records);
  fmt::format_to(out, "lost_records        {} reported by {} LOST_RECORDS records\n",
                 s.lost_records, s.lost_records_events);
  fmt::format_to(out, "runstate_changes    {}\n", s.runstate_changes);
  fmt::format_to(out, "switch_infprev      {}\n", s.switch_infprev);
  fmt::format_to(out, "switch_infnext      {}\n", s.switch_infnext);
  fmt::format_to(out, "\n{:>5} {:>12} {:>8} {:>22} {:>22} {:>16} {:>10}\n", "cpu", "records",
                 "chunks", "first_tsc", "last_tsc", "tsc_span", "backwards");
  for (const auto& [cpu, c] : s.per_cpu) {
    fmt::format_to(out, "{:>5} {:>12} {:>8} {:>22} {:>22} {:>16} {:>10}{}\n", cpu, c.records,
                   c.chunks, c.first_tsc, c.last_tsc, c.tsc_span(), c.tsc_backwards,
                   Seconds(clock, c.tsc_span()));
  }
  fmt::format_to(out, "\n{:<10} {:>12}\n", "class", "records");
  for (const auto& [name, count] : s.per_class) fmt::format_to(out, "{:<10} {:>12}\n", name, count);
  fmt::format_to(out, "\n{:<12} {:<32} {:>12}\n", "event", "name", "records");
  for (const auto& [event, count] : s.per_event) {
    const std::string_view name = tracefmt::EventName(event);
    fmt::format_to(out, "{:<12} {:<32} {:>12}\n", HexWord(event), name.empty() ? "-" : name, count);
  }
  fmt::format_to(out, "\nanomalies           {}\n", s.anomalies.size());
  for (const tracefmt::Error& e : s.anomalies) fmt::format_to(out, "  {}\n", e.Describe());
  return text;
}

nlohmann::ordered_json SummaryJson(const TraceSummary& s, std::string_view path,
                                   const TscClock* clock) {
  nlohmann::ordered_json j;
  j["file"] = path;
  j["bytes"] = s.file_bytes;
  if (clock != nullptr) j["cpu_khz"] = clock->cpu_khz();
  j["records"] = s.records;
  j["cpu_change_records"] = s.cpu_change_records;
  j["wrap_records"] = s.wrap_records;
  j["lost_records"] = s.lost_records;
  j["lost_records_events"] = s.lost_records_events;
  j["runstate_changes"] = s.runstate_changes;
  j["switch_infprev"] = s.switch_infprev;
  j["switch_infnext"] = s.switch_infnext;
  nlohmann::ordered_json per_cpu = nlohmann::ordered_json::object();
  nlohmann::ordered_json tsc = nlohmann::ordered_json::object();
  for (const auto& [cpu, c] : s.per_cpu) {
    const std::string key = std::to_string(cpu);
    per_cpu[key] = c.records;
    nlohmann::ordered_json& t = tsc[key];
    t["first"] = c.first_tsc;
    t["last"] = c.last_tsc;
    t["span"] = c.tsc_span();
    if (clock != nullptr) t["span_ns"] = clock->ToNs(c.tsc_span());
    t["backwards"] = c.tsc_backwards;
    t["chunks"] = c.chunks;
  }
  j["per_cpu"] = std::move(per_cpu);
  j["tsc"] = std::move(tsc);
  nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
  for (const auto& [name, count] : s.per_class) per_class[std::string(name)] = count;
  j["per_class"] = std::move(per_class);
  nlohmann::ordered_json per_event = nlohmann::ordered_json::object();
  for (const auto& [event, count] : s.per_event) per_event[tracefmt::EventLabel(event)] = count;
  j["per_event"] = std::move(per_event);
  nlohmann::ordered_json anomalies = nlohmann::ordered_json::array();
  for (const tracefmt::Error& e : s.anomalies) {
    nlohmann::ordered_json a;
    a["code"] = tracefmt::ErrorCodeName(e.code);
    if (e.offset != tracefmt::Error::kNoOffset) a["offset"] = e.offset;
    a["message"] = e.message;
    anomalies.push_back(std::move(a));
  }
  j["anomalies"] = std::move(anomalies);
  return j;
}

}  // namespace dom0tools
