#include "top/top_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "names/domain_name.h"

namespace xenbake::top {
namespace {

namespace shm = xenbaked::publish::shm;
using xenbaked::publish::Liveness;

constexpr double kNsPerS = 1e9;
constexpr size_t kNameColumns = 18;
constexpr uint32_t kIdleDomain = 32767;  // one vCPU per physical CPU; "runnable" = CPU busy

double Pct(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}
double PerSecond(uint64_t count, uint64_t ns) {
  return ns == 0 ? 0.0 : static_cast<double>(count) * kNsPerS / static_cast<double>(ns);
}

// The real length of window `w`: its end minus its start once it has closed.
uint64_t WindowNs(const shm::Snapshot& s, size_t w) {
  if (s.window_end_ns[w] > s.window_start_ns[w]) return s.window_end_ns[w] - s.window_start_ns[w];
  return 0;
}

DomainFigures FiguresOf(const xenbaked::publish::DomainCounters& c, uint64_t unknown_ns,
                        uint64_t window_ns) {
  return {.cpu_pct = Pct(c.running_ns, window_ns),
          .wait_pct = Pct(c.runnable_ns, window_ns),
          .blocked_pct = Pct(c.blocked_ns, window_ns),
          .unknown_pct = Pct(unknown_ns, window_ns),
          .dispatches_per_s = PerSecond(c.dispatches, window_ns),
          .mean_slice_us = c.run_slices == 0 ? 0.0
                                             : static_cast<double>(c.slice_sum_ns) /
                                                   static_cast<double>(c.run_slices) / 1000.0,
          .io_per_s = PerSecond(c.io_records, window_ns),
          .lost_records = c.lost_records};
}

std::string Warning(Liveness liveness, const shm::Snapshot& s, uint64_t now_monotonic_ns) {
  switch (liveness) {
    case Liveness::kLive:
      return {};
    case Liveness::kStopped:
      return "xenbaked has stopped: these are its last figures";
    case Liveness::kStale: {
      // A heartbeat that never moved is no publication: there is no age to give (the monotonic
      // clock never reads 0 at a publication).
      if (s.heartbeat.publish_monotonic_ns == 0)
        return "no publication yet from xenbaked: it is starting, hung or gone; no figures";
      const uint64_t age_ns = now_monotonic_ns > s.heartbeat.publish_monotonic_ns
                                  ? now_monotonic_ns - s.heartbeat.publish_monotonic_ns
                                  : 0;
      return fmt::format("xenbaked has not published for {}: it is hung or gone; figures are stale",
                         FormatDuration(age_ns));
    }
  }
  return {};
}

HealthLine HealthOf(const shm::Snapshot& s) {
  const shm::HealthEntry& h = s.health;
  HealthLine line{.backend = SanitizeDomainName(h.backend),
                  .uptime_s = h.uptime_ns / 1'000'000'000,
                  .max_fill_pct = 0,
                  .max_fill_cpu = 0,
                  .wakes_irq = h.wakes_irq,
                  .wakes_timer = h.wakes_timer,
                  .lost_records = h.lost_records,
                  .records_per_s = static_cast<double>(h.records_per_s_milli) / 1000.0,
                  .drain_p50_ns = h.drain_latency.QuantileUpperNs(0.5),
                  .drain_p99_ns = h.drain_latency.QuantileUpperNs(0.99),
                  .drain_max_ns = h.drain_latency.max_ns};
  for (const shm::CpuEntry& c : s.cpus) {
    if (!c.has_buffer || c.buffer_bytes == 0) continue;
    const double fill = Pct(c.fill_bytes, c.buffer_bytes);
    if (fill >= line.max_fill_pct) {
      line.max_fill_pct = fill;
      line.max_fill_cpu = c.cpu;
    }
  }
  return line;
}

// The value a row sorts by, over window `w`.
double SortValue(const DomainRow& row, SortKey key, size_t w) {
  const std::optional<DomainFigures>& f = row.windows[w];
  switch (key) {
    case SortKey::kCpu:
      return f->cpu_pct;
    case SortKey::kWait:
      return f->wait_pct;
    case SortKey::kBlocked:
      return f->blocked_pct;
    case SortKey::kDispatches:
      return f->dispatches_per_s;
    case SortKey::kSlice:
      return f->mean_slice_us;
    case SortKey::kIo:
      return f->io_per_s;
    case SortKey::kId:
    case SortKey::kName:
      return 0;
  }
  return 0;
}

std::string Pct1(const std::optional<DomainFigures>& f, double DomainFigures::*field) {
  return f ? fmt::format("{:5.1f}", (*f).*field) : std::string("    -");
}

}  // namespace

std::string FormatDuration(uint64_t ns) {
  if (ns < 1000) return fmt::format("{}ns", ns);
  if (ns < 1'000'000) return fmt::format("{:.1f}us", static_cast<double>(ns) / 1e3);
  if (ns < 1'000'000'000) return fmt::format("{:.1f}ms", static_cast<double>(ns) / 1e6);
  return fmt::format("{:.2f}s", static_cast<double>(ns) / 1e9);
}

TopModel BuildTopModel(const shm::Snapshot& s, Liveness liveness, uint64_t now_monotonic_ns) {
  TopModel model;
  model.state = liveness == Liveness::kLive    ? DaemonState::kLive
                : liveness == Liveness::kStale ? DaemonState::kStale
                                               : DaemonState::kStopped;
  model.warning = Warning(liveness, s, now_monotonic_ns);
  model.publish_realtime_ns = s.heartbeat.publish_realtime_ns;
  for (size_t w = 0; w < kWindows; ++w) model.window_length_ns[w] = s.window_length_ns[w];
  for (const shm::DomainEntry& d : s.domains) {
    DomainRow row{.domid = d.domid,
                  .label = d.domid == kIdleDomain ? "idle" : SanitizeDomainName(d.name),
                  .vcpus = d.vcpus,
                  .destroyed = d.destroyed,
                  .windows = {}};
    for (size_t w = 0; w < kWindows; ++w) {
      const uint64_t window_ns = WindowNs(s, w);
      if (d.in_window[w] && window_ns != 0) {
        row.windows[w] = FiguresOf(d.windows[w], d.window_unknown_ns[w], window_ns);
      }
    }
    model.domains.push_back(std::move(row));
  }
  const uint64_t first_window_ns = WindowNs(s, 0);
  for (const shm::CpuEntry& c : s.cpus) {
    CpuRow row{.cpu = c.cpu,
               .capture_pct = std::nullopt,
               .records_per_s = PerSecond(c.windows[0].records, first_window_ns),
               .lost_records = c.lost_records,
               .has_buffer = c.has_buffer,
               .fill_pct = Pct(c.fill_bytes, c.buffer_bytes),
               .peak_fill_pct = Pct(c.peak_fill_bytes, c.buffer_bytes)};
    if (c.has_accounting && first_window_ns != 0) {
      row.capture_pct = static_cast<double>(c.windows[0].capture_ratio_ppm) / 1e4;
    }
    model.cpus.push_back(row);
  }
  model.health = HealthOf(s);
  return model;
}

std::string_view SortKeyName(SortKey key) {
  switch (key) {
    case SortKey::kId:
      return "id";
    case SortKey::kCpu:
      return "cpu";
    case SortKey::kWait:
      return "wait";
    case SortKey::kBlocked:
      return "blocked";
    case SortKey::kDispatches:
      return "dispatches";
    case SortKey::kSlice:
      return "slice";
    case SortKey::kIo:
      return "io";
    case SortKey::kName:
      return "name";
  }
  return "id";
}

std::optional<SortKey> ParseSortKey(std::string_view name) {
  for (SortKey key : kSortKeys) {
    if (SortKeyName(key) == name) return key;
  }
  return std::nullopt;
}

void SortDomains(std::vector<DomainRow>& rows, SortKey key, bool descending, size_t window) {
  const auto less = [&](const DomainRow& a, const DomainRow& b) {
    if (key == SortKey::kId) return descending ? a.domid > b.domid : a.domid < b.domid;
    if (key == SortKey::kName) {
      return descending ? std::tie(b.label, a.domid) < std::tie(a.label, b.domid)
                        : std::tie(a.label, a.domid) < std::tie(b.label, b.domid);
    }
    const bool ha = a.windows[window].has_value();
    const bool hb = b.windows[window].has_value();
    if (ha != hb) return ha;  // rows with figures first
    if (ha) {
      const double va = SortValue(a, key, window);
      const double vb = SortValue(b, key, window);
      if (va != vb) return descending ? va > vb : va < vb;
    }
    return a.domid < b.domid;
  };
  std::stable_sort(rows.begin(), rows.end(), less);
}

std::string FormatDomainHeader() {
  return fmt::format("{:>5} {:<{}} {:>4} ? {:>11} {:>11} {:>11} {:>8} {:>8} {:>7} {:>6}", "ID",
                     "NAME", kNameColumns, "VCPU", "CPU% 1s/10s", "WAIT 1s/10s", "BLK% 1s/10s",
                     "DISP/s", "SLICE", "IO/s", "LOST");
}

std::string FormatDomainRow(const DomainRow& row) {
  const std::string name = FitToWidth(row.label, kNameColumns);
  const std::string padded = name + std::string(kNameColumns - DisplayWidth(name), ' ');
  const std::optional<DomainFigures>& one = row.windows[0];
  const std::string slice = one && one->mean_slice_us > 0
                                ? FormatDuration(static_cast<uint64_t>(one->mean_slice_us * 1000.0))
                                : std::string("-");
  return fmt::format(
      "{:>5} {} {:>4} {} {} {} {} {} {} {} {:>8} {:>8} {:>7} {:>6}", row.domid, padded, row.vcpus,
      row.has_unknown() ? '?' : ' ', Pct1(one, &DomainFigures::cpu_pct), Pct1(row.windows[1], &DomainFigures::cpu_pct),
      Pct1(one, &DomainFigures::wait_pct), Pct1(row.windows[1], &DomainFigures::wait_pct),
      Pct1(one, &DomainFigures::blocked_pct), Pct1(row.windows[1], &DomainFigures::blocked_pct),
      one ? fmt::format("{:.0f}", one->dispatches_per_s) : "-", slice,
      one ? fmt::format("{:.0f}", one->io_per_s) : "-",
      one ? fmt::format("{}", one->lost_records) : "-");
}

std::string FormatCpuHeader() {
  return fmt::format("{:>5} {:>9} {:>10} {:>7} {:>7} {:>10}", "CPU", "CAPTURE%", "RECORDS/s",
                     "FILL%", "PEAK%", "LOST");
}

std::string FormatCpuRow(const CpuRow& row) {
  return fmt::format("{:>5} {:>9} {:>10.0f} {:>7} {:>7} {:>10}", row.cpu,
                     row.capture_pct ? fmt::format("{:.2f}", *row.capture_pct) : "-",
                     row.records_per_s, row.has_buffer ? fmt::format("{:.1f}", row.fill_pct) : "-",
                     row.has_buffer ? fmt::format("{:.1f}", row.peak_fill_pct) : "-",
                     row.lost_records);
}

std::string FormatHealthLine(const HealthLine& h) {
  return fmt::format(
      "xenbaked {} up {}s | fill max {:.0f}% (cpu{}) | wakes irq {} timer {} | lost {} | "
      "{:.0f} rec/s | drain p50 {} p99 {} max {}",
      h.backend, h.uptime_s, h.max_fill_pct, h.max_fill_cpu, h.wakes_irq, h.wakes_timer,
      h.lost_records, h.records_per_s, FormatDuration(h.drain_p50_ns),
      FormatDuration(h.drain_p99_ns), FormatDuration(h.drain_max_ns));
}

std::string FormatTable(const TopModel& model) {
  std::string out;
  if (!model.warning.empty()) out += "WARNING: " + model.warning + "\n";
  out += FormatHealthLine(model.health) + "\n";
  out += FormatDomainHeader() + "\n";
  for (const DomainRow& row : model.domains) out += FormatDomainRow(row) + "\n";
  out += FormatCpuHeader() + "\n";
  for (const CpuRow& row : model.cpus) out += FormatCpuRow(row) + "\n";
  return out;
}

nlohmann::json ModelJson(const TopModel& model) {
  static constexpr std::array<std::string_view, 4> kStates = {"live", "stale", "stopped", "gone"};
  nlohmann::json domains = nlohmann::json::array();
  for (const DomainRow& row : model.domains) {
    nlohmann::json windows = nlohmann::json::object();
    for (size_t w = 0; w < kWindows; ++w) {
      const std::string key = fmt::format("{}s", model.window_length_ns[w] / 1'000'000'000);
      const std::optional<DomainFigures>& f = row.windows[w];
      windows[key] = f ? nlohmann::json{{"cpu_pct", f->cpu_pct},
                                        {"wait_pct", f->wait_pct},
                                        {"blocked_pct", f->blocked_pct},
                                        {"unknown_pct", f->unknown_pct},
                                        {"dispatches_per_s", f->dispatches_per_s},
                                        {"mean_slice_us", f->mean_slice_us},
                                        {"io_per_s", f->io_per_s},
                                        {"lost_records", f->lost_records}}
                       : nlohmann::json();
    }
    domains.push_back({{"domid", row.domid},
                       {"name", row.label},
                       {"vcpus", row.vcpus},
                       {"destroyed", row.destroyed},
                       {"windows", windows}});
  }
  nlohmann::json cpus = nlohmann::json::array();
  for (const CpuRow& row : model.cpus) {
    cpus.push_back(
        {{"cpu", row.cpu},
         {"capture_pct", row.capture_pct ? nlohmann::json(*row.capture_pct) : nlohmann::json()},
         {"records_per_s", row.records_per_s},
         {"lost_records", row.lost_records},
         {"fill_pct", row.has_buffer ? nlohmann::json(row.fill_pct) : nlohmann::json()},
         {"peak_fill_pct", row.has_buffer ? nlohmann::json(row.peak_fill_pct) : nlohmann::json()}});
  }
  const HealthLine& h = model.health;
  return {{"daemon", kStates[static_cast<size_t>(model.state)]},
          {"warning", model.warning},
          {"published_unix_ns", model.publish_realtime_ns},
          {"domains", domains},
          {"cpus", cpus},
          {"health",
           {{"backend", h.backend},
            {"uptime_s", h.uptime_s},
            {"max_fill_pct", h.max_fill_pct},
            {"max_fill_cpu", h.max_fill_cpu},
            {"wakes_irq", h.wakes_irq},
            {"wakes_timer", h.wakes_timer},
            {"lost_records", h.lost_records},
            {"records_per_s", h.records_per_s},
            {"drain_p50_ns", h.drain_p50_ns},
            {"drain_p99_ns", h.drain_p99_ns},
            {"drain_max_ns", h.drain_max_ns}}}};
}

}  // namespace xenbake::top
