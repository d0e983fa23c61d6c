#include "api_json.h"

#include "tracefmt/events.h"

namespace xenbaked::publish::api {

using nlohmann::json;

namespace {
const DomainTotals* FindIncarnation(const Window& w, const DomainTotals& d) {
  for (const DomainTotals& x : w.delta.domains) {
    if (x.domid == d.domid && x.instance == d.instance) return &x;
  }
  return nullptr;
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
          {"last_cpu", v.last_cpu},
          {"state", int(v.state)}};
}

// A domain's counters and its unknown time (not one of the snapshot layout's counters).
json DomainCountersJson(const DomainTotals& d) {
  json out = CountersJson(DomainCounters::Of(d));
  out["unknown_ns"] = d.unknown_ns;
  return out;
}
// null until the daemon has measured enough intervals to advise.
json TbufAdviceJson(const TbufAdvice& a) {
  if (!a.ready) return nullptr;
  return {{"recommended_pages", a.recommended_pages},
          {"boot_option", "tbuf_size=" + std::to_string(a.recommended_pages)},
          {"current_pages", a.current_pages},
          {"max_pages", a.max_pages},
          {"capped", a.capped},
          {"loss_seen", a.loss_seen},
          {"peak_bytes_per_s", a.peak_bytes_per_s},
          {"peak_cpu", a.peak_cpu},
          {"worst_drain_latency_ns", a.worst_latency_ns},
          {"intervals", a.intervals}};
}

}  // namespace

json CountersJson(const DomainCounters& c) {
  json out = json::object();
  for (size_t i = 0; i < DomainCounters::kFields.size(); ++i) {
    out[std::string(DomainCounters::kNames[i])] = c.*(DomainCounters::kFields[i]);
  }
  return out;
}

json CpuJson(const CpuTotals& c) {
  const uint64_t explained = c.elapsed_ns > c.lost_gap_ns ? c.elapsed_ns - c.lost_gap_ns : 0;
  return {{"cpu", c.cpu},
          {"records", c.records},
          {"elapsed_ns", c.elapsed_ns},
          {"accounted_ns", c.accounted_ns},
          {"lost_records", c.lost_records},
          {"lost_gap_ns", c.lost_gap_ns},
          {"capture_ratio", explained ? double(c.accounted_ns) / double(explained) : 1.0}};
}

json DomainJson(const DomainTotals& d, const DomainNames& names,
                const std::vector<const Window*>& latest, bool vcpus) {
  json out = {{"domid", d.domid},
              {"instance", d.instance},
              {"name", DomainName(names, d.domid)},
              {"vcpus", d.vcpus.size()},
              {"destroyed", d.destroyed},
              {"first_seen_ns", d.first_seen_ns},
              {"last_seen_ns", d.last_seen_ns},
              {"slice_min_ns", d.slice_min_ns},
              {"slice_max_ns", d.slice_max_ns},
              {"totals", DomainCountersJson(d)}};
  json windows = json::array();
  for (const Window* w : latest) {
    const DomainTotals* in = FindIncarnation(*w, d);
    if (in == nullptr) continue;
    json one = DomainCountersJson(*in);
    one["length_ns"] = w->length_ns;
    one["start_ns"] = w->start_ns;
    one["end_ns"] = w->end_ns;
    windows.push_back(std::move(one));
  }
  out["windows"] = std::move(windows);
  if (vcpus) {
    json list = json::array();
    for (const VcpuTotals& v : d.vcpus) list.push_back(VcpuJson(v));
    out["vcpu_totals"] = std::move(list);
  }
  return out;
}

json WindowJson(const Window& w, const DomainNames& names) {
  json domains = json::array();
  for (const DomainTotals& d : w.delta.domains) {
    json one = DomainCountersJson(d);
    one["domid"] = d.domid;
    one["instance"] = d.instance;
    one["name"] = DomainName(names, d.domid);
    one["destroyed"] = d.destroyed;
    domains.push_back(std::move(one));
  }
  json cpus = json::array();
  for (const CpuTotals& c : w.delta.cpus) cpus.push_back(CpuJson(c));
  return {{"length_ns", w.length_ns},      {"index", w.index},
          {"start_ns", w.start_ns},        {"end_ns", w.end_ns},
          {"records", w.delta.records},    {"lost_records", w.delta.lost_records},
          {"domains", std::move(domains)}, {"cpus", std::move(cpus)}};
}

json HealthJson(const DaemonHealth& h) {
  json cpus = json::array();
  for (const CpuHealth& c : h.cpus) {
    cpus.push_back({{"cpu", c.cpu},
                    {"buffer_bytes", c.buffer_bytes},
                    {"fill_bytes", c.fill_bytes},
                    {"peak_fill_bytes", c.peak_fill_bytes},
                    {"fill_ratio", c.fill_ratio()},
                    {"records", c.records},
                    {"lost_records", c.lost_records},
                    {"lost_records_at_start", c.lost_records_at_start},
                    {"anomalies", c.anomalies},
                    {"budget_hits", c.budget_hits}});
  }
  const LatencyHistogram& l = h.drain_latency;
  return {{"backend", h.backend},
          {"version", h.version},
          {"start_unix_ns", h.start_unix_ns},
          {"uptime_ns", h.uptime_ns},
          {"last_drain_unix_ns", h.last_drain_unix_ns},
          {"cpu_khz", h.cpu_khz},
          {"wakes", {{"irq", h.wakes_irq}, {"timer", h.wakes_timer}, {"repost", h.wakes_repost}}},
          {"passes", h.passes},
          {"records", h.records},
          {"records_per_s", h.records_per_s},
          {"lost_records", h.lost_records},
          {"lost_records_at_start", h.lost_records_at_start},
          {"anomalies", h.anomalies},
          {"late_records", h.late_records},
          {"capture",
           {{"enabled", h.capture_enabled},
            {"bytes", h.capture_bytes},
            {"errors", h.capture_errors},
            {"chunks_lost", h.capture_chunks_lost}}},
          {"publish_errors", h.publish_errors},
          {"untraced_cpus", h.online_cpus_known ? json(h.untraced_cpus) : json(nullptr)},
          {"drain_latency_ns",
           {{"count", l.count}, {"mean", l.mean_ns()}, {"min", l.min_ns}, {"max", l.max_ns}}},
          {"wake_to_drain_start_max_ns", h.wake_to_drain_start.max_ns},
          {"drain_pass_max_ns", h.drain_pass.max_ns},
          {"irq_to_drain_max_ns", h.irq_to_drain_max_ns},
          {"tbuf_advice", TbufAdviceJson(h.tbuf_advice)},
          {"cpus", std::move(cpus)}};
}

json DomainReconcileJson(const DomainReconcile& d) {
  return {{"vcpus", d.vcpus},
          {"trace_running_ns", d.trace_running_ns},
          {"xen_cpu_ns", d.xen_cpu_ns},
          {"error_ns", d.error_ns()},
          {"unknown_ns", d.unknown_ns},
          {"lag_before_ns", d.lag_before_ns},
          {"lag_after_ns", d.lag_after_ns},
          {"bound_below_ns", d.bound_below_ns()},
          {"bound_above_ns", d.bound_above_ns()},
          {"explained", d.explained()},
          {"trace_running_total_ns", d.trace_running_total_ns},
          {"xen_cpu_total_ns", d.xen_cpu_total_ns},
          {"unknown_total_ns", d.unknown_total_ns},
          {"unexplained_periods", d.unexplained_periods}};
}

json ReconcileJson(const std::optional<ReconcileReport>& r) {
  if (!r) return nullptr;
  json domains = json::array();
  for (const DomainReconcile& d : r->domains) {
    json one = DomainReconcileJson(d);
    one["domid"] = d.domid;
    one["instance"] = d.instance;
    domains.push_back(std::move(one));
  }
  return {{"reads", r->reads},
          {"period_ns", r->period_ns},
          {"read_ns", r->read_ns},
          {"vcpus_read", r->vcpus_read},
          {"read_tsc_known", r->read_tsc_known},
          {"resets", r->resets},
          {"vcpus_appeared", r->vcpus_appeared},
          {"vcpus_vanished", r->vcpus_vanished},
          {"unexplained_periods", r->unexplained_periods},
          {"host", DomainReconcileJson(r->host)},
          {"domains", std::move(domains)}};
}

}  // namespace xenbaked::publish::api
