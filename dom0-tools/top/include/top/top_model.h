// top/top_model.h — what xenbake-top shows, computed from one daemon snapshot. Pure: no
// terminal, no clock, so the figures are tested without either.
//
// Percentages are of one physical CPU over the window, as xentop's: a domain whose two vCPUs
// both run the whole time shows 200% CPU. Wait is time runnable but not running (what stock Xen
// gives no tool but a trace consumer), blocked is time asleep.
//
//   TopModel model = BuildTopModel(snapshot, Liveness::kLive, now_monotonic_ns);
//   SortDomains(model.domains, SortKey::kCpu, /*descending=*/true);
//   std::string table = FormatTable(model, /*width=*/120);
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "xenbaked/publish/snapshot_layout.h"
#include "xenbaked/publish/snapshot_reader.h"

namespace xenbake::top {

inline constexpr size_t kWindows = xenbaked::publish::shm::kWindowSlots;  // 1 s and 10 s

// One domain's figures over one window; absent when the domain was not alive in it or the window
// has not closed yet.
struct DomainFigures {
  double cpu_pct = 0;
  double wait_pct = 0;
  double blocked_pct = 0;
  // Time the trace cannot vouch for (lost records, a vCPU not yet seen): the true CPU, wait and
  // blocked figures may each be up to this much higher. 0 from a daemon of layout 1.0.
  double unknown_pct = 0;
  double dispatches_per_s = 0;
  double mean_slice_us = 0;  // 0 when no slice completed
  double io_per_s = 0;
  uint64_t lost_records = 0;
};

struct DomainRow {
  uint32_t domid = 0;
  std::string label;  // sanitised name ("" when none), shown beside the id
  uint32_t vcpus = 0;
  bool destroyed = false;
  std::array<std::optional<DomainFigures>, kWindows> windows;
  // The newest 1 s window holds unknown time: the row is flagged `?`.
  bool has_unknown() const { return windows[0] && windows[0]->unknown_pct > 0; }
};

struct CpuRow {
  uint32_t cpu = 0;
  std::optional<double> capture_pct;  // newest 1 s window: time accounted / time elapsed
  double records_per_s = 0;
  uint64_t lost_records = 0;
  bool has_buffer = false;
  double fill_pct = 0;
  double peak_fill_pct = 0;
};

struct HealthLine {
  std::string backend;
  uint64_t uptime_s = 0;
  double max_fill_pct = 0;
  uint32_t max_fill_cpu = 0;
  uint64_t wakes_irq = 0;
  uint64_t wakes_timer = 0;
  uint64_t lost_records = 0;
  double records_per_s = 0;
  uint64_t drain_p50_ns = 0;
  uint64_t drain_p99_ns = 0;
  uint64_t drain_max_ns = 0;
};

enum class DaemonState { kLive, kStale, kStopped, kGone };

struct TopModel {
  DaemonState state = DaemonState::kLive;
  std::string warning;  // empty when live: what is wrong, for a person
  std::array<uint64_t, kWindows> window_length_ns{};
  std::vector<DomainRow> domains;
  std::vector<CpuRow> cpus;
  HealthLine health;
  uint64_t publish_realtime_ns = 0;
};

TopModel BuildTopModel(const xenbaked::publish::shm::Snapshot& snapshot,
                       xenbaked::publish::Liveness liveness, uint64_t now_monotonic_ns);

enum class SortKey { kId, kCpu, kWait, kBlocked, kDispatches, kSlice, kIo, kName };
inline constexpr std::array kSortKeys = {SortKey::kCpu,        SortKey::kWait,  SortKey::kBlocked,
                                         SortKey::kDispatches, SortKey::kSlice, SortKey::kIo,
                                         SortKey::kId,         SortKey::kName};
std::string_view SortKeyName(SortKey key);
std::optional<SortKey> ParseSortKey(std::string_view name);
// Sorts by the key over window `window` (domains without figures last), then by id.
void SortDomains(std::vector<DomainRow>& rows, SortKey key, bool descending, size_t window = 0);

// Fixed-width text for batch mode and the terminal alike (the terminal adds colour).
std::string FormatDomainHeader();
std::string FormatDomainRow(const DomainRow& row);
std::string FormatCpuHeader();
std::string FormatCpuRow(const CpuRow& row);
std::string FormatHealthLine(const HealthLine& health);
std::string FormatDuration(uint64_t ns);  // "850ns", "12.5us", "3.2ms", "1.20s"
// The whole model as a text table (batch --format text).
std::string FormatTable(const TopModel& model);
// The whole model as one JSON object (batch --format json).
nlohmann::json ModelJson(const TopModel& model);

}  // namespace xenbake::top
