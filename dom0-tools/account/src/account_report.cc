#include "account_report.h"

#include <fmt/format.h>

#include <algorithm>

namespace dom0tools::internal {
namespace {

using nlohmann::json;
using xenbaked::CpuTotals;
using xenbaked::DomainTotals;
using xenbaked::VcpuTotals;

uint64_t MeanSlice(const DomainTotals& d) {
  return d.run_slices == 0 ? 0 : d.slice_sum_ns / d.run_slices;
}

json VcpuJson(const VcpuTotals& v) {
  return {{"vcpu", v.vcpu},
          {"running_ns", v.running_ns},
          {"runnable_ns", v.runnable_ns},
          {"blocked_ns", v.blocked_ns},
          {"offline_ns", v.offline_ns},
          {"unknown_ns", v.unknown_ns},
          {"dispatches", v.dispatches},
          {"wakes", v.wakes},
          {"blocks", v.blocks},
          {"state", std::string(tracefmt::RunstateName(v.state))},
          {"last_cpu", v.last_cpu}};
}

json DomainJson(const DomainTotals& d, bool with_vcpus) {
  json j = {{"domid", d.domid},
            {"instance", d.instance},
            {"destroyed", d.destroyed},
            {"first_seen_ns", d.first_seen_ns},
            {"last_seen_ns", d.last_seen_ns},
            {"running_ns", d.running_ns},
            {"runnable_ns", d.runnable_ns},
            {"blocked_ns", d.blocked_ns},
            {"offline_ns", d.offline_ns},
            {"unknown_ns", d.unknown_ns},
            {"dispatches", d.dispatches},
            {"slices", d.run_slices},
            {"slice_min_ns", d.slice_min_ns},
            {"slice_mean_ns", MeanSlice(d)},
            {"slice_max_ns", d.slice_max_ns},
            {"allocated_ns", d.allocated_ns},
            {"allocations", d.allocations},
            {"wakes", d.wakes},
            {"blocks", d.blocks},
            {"hypercalls", d.hypercalls},
            {"io", d.io_records},
            {"lost_records", d.lost_records}};
  if (with_vcpus) {
    json vcpus = json::array();
    for (const VcpuTotals& v : d.vcpus)
      if (v.seen) vcpus.push_back(VcpuJson(v));
    j["vcpus"] = std::move(vcpus);
  }
  return j;
}

json CpuJson(const CpuTotals& c) {
  return {{"cpu", c.cpu},
          {"records", c.records},
          {"elapsed_ns", c.elapsed_ns},
          {"accounted_ns", c.accounted_ns},
          {"capture_ratio", c.capture_ratio()},
          {"unknown_start_ns", c.unknown_start_ns},
          {"lost_records", c.lost_records},
          {"lost_gap_ns", c.lost_gap_ns},
          {"wrap_records", c.wrap_records},
          {"hypercalls", c.hypercalls},
          {"io", c.io_records},
          {"unattributed", c.unattributed}};
}

double Seconds(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

}  // namespace

json AccountJson(const AccountResult& r, const AccountOptions& o) {
  const xenbaked::AccountingSnapshot& t = r.totals;
  json j = {{"file", o.path},
            {"cpu_khz", t.cpu_khz},
            {"records", t.records},
            {"elapsed_ns", t.at_ns},
            {"lost_records", t.lost_records},
            {"anomalies", t.anomalies},
            {"anomaly_kinds",
             {{"runstate_mismatch", t.anomaly_kinds.runstate_mismatch},
              {"switch_mismatch", t.anomaly_kinds.switch_mismatch},
              {"bad_id", t.anomaly_kinds.bad_id},
              {"time_backwards", t.anomaly_kinds.time_backwards}}}};
  json cpus = json::array();
  for (const CpuTotals& c : t.cpus) cpus.push_back(CpuJson(c));
  j["cpus"] = std::move(cpus);
  json domains = json::array();
  for (const DomainTotals& d : AllDomains(r)) domains.push_back(DomainJson(d, o.vcpus));
  j["domains"] = std::move(domains);
  if (r.damage) {
    j["error"] = {{"message", r.damage->Describe()}, {"offset", r.damage->offset}};
  }
  return j;
}

std::string AccountText(const AccountResult& r, const AccountOptions& o) {
  const xenbaked::AccountingSnapshot& t = r.totals;
  std::string s =
      fmt::format("{}: {} records over {:.6f} s at {} kHz; lost records {}; anomalies {}\n\n",
                  o.path, t.records, Seconds(t.at_ns), t.cpu_khz, t.lost_records, t.anomalies);
  s += fmt::format(
      "{:>6} {:>5} {:>12} {:>12} {:>12} {:>12} {:>12} {:>10} {:>11} {:>8} {:>8} {:>12} "
      "{:>10} {:>8} {:>10}\n",
      "domain", "vcpu", "running_s", "runnable_s", "blocked_s", "offline_s", "unknown_s",
      "dispatches", "mean_sl_us", "wakes", "blocks", "allocated_s", "hypercalls", "io", "lost");
  for (const DomainTotals& d : AllDomains(r)) {
    const std::string id = d.destroyed ? fmt::format("{}†", d.domid) : fmt::format("{}", d.domid);
    s += fmt::format(
        "{:>6} {:>5} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>10} {:>11.1f} {:>8} "
        "{:>8} {:>12.6f} {:>10} {:>8} {:>10}\n",
        id, "all", Seconds(d.running_ns), Seconds(d.runnable_ns), Seconds(d.blocked_ns),
        Seconds(d.offline_ns), Seconds(d.unknown_ns), d.dispatches,
        static_cast<double>(MeanSlice(d)) / 1e3, d.wakes, d.blocks, Seconds(d.allocated_ns),
        d.hypercalls, d.io_records, d.lost_records);
    if (!o.vcpus) continue;
    for (const VcpuTotals& v : d.vcpus) {
      if (!v.seen) continue;
      s += fmt::format(
          "{:>6} {:>5} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>10} {:>11} {:>8} "
          "{:>8}\n",
          "", v.vcpu, Seconds(v.running_ns), Seconds(v.runnable_ns), Seconds(v.blocked_ns),
          Seconds(v.offline_ns), Seconds(v.unknown_ns), v.dispatches, "", v.wakes, v.blocks);
    }
  }
  s += fmt::format("\n{:>4} {:>10} {:>12} {:>12} {:>9} {:>14} {:>10} {:>12} {:>6}\n", "cpu",
                   "records", "elapsed_s", "accounted_s", "capture", "unknown_st_ms", "lost",
                   "lost_gap_s", "wraps");
  for (const CpuTotals& c : t.cpus) {
    s += fmt::format(
        "{:>4} {:>10} {:>12.6f} {:>12.6f} {:>8.4f}% {:>14.3f} {:>10} {:>12.6f} "
        "{:>6}\n",
        c.cpu, c.records, Seconds(c.elapsed_ns), Seconds(c.accounted_ns), 100.0 * c.capture_ratio(),
        static_cast<double>(c.unknown_start_ns) / 1e6, c.lost_records, Seconds(c.lost_gap_ns),
        c.wrap_records);
  }
  if (std::any_of(t.domains.begin(), t.domains.end(),
                  [](const DomainTotals& d) { return d.destroyed; }) ||
      !r.replaced.empty())
    s += "\n† destroyed in the capture (its final record)\n";
  return s;
}

}  // namespace dom0tools::internal
