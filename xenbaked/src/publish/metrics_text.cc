// The Prometheus exposition text: rendered once per interval, served as is.
#include <fmt/format.h>

#include "xenbaked/publish/metrics.h"

namespace xenbaked::publish {

namespace {

constexpr double kNsPerSecond = 1e9;

class Exposition {
 public:
  // Starts a family: its HELP and TYPE lines.
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  void Sample(std::string_view name, std::string_view labels, double value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string DomainLabels(const DomainTotals& d, const DomainNames& names) {
  return fmt::format("domid=\"{}\",name=\"{}\"", d.domid,
                     EscapeLabelValue(DomainName(names, d.domid)));
}

void DomainFamilies(const PublishView& view, Exposition& out) {
  struct Family {
    std::string_view name;
    std::string_view type;
    std::string_view help;
    double (*value)(const DomainTotals&);
  };
  static constexpr Family kFamilies[] = {
      {"xenbaked_domain_cpu_seconds_total", "counter", "Time the domain's vCPUs ran on a CPU.",
       [](const DomainTotals& d) { return double(d.running_ns) / kNsPerSecond; }},
      {"xenbaked_domain_runnable_seconds_total", "counter",
       "Time the domain's vCPUs were runnable but waiting for a CPU (steal).",
       [](const DomainTotals& d) { return double(d.runnable_ns) / kNsPerSecond; }},
      {"xenbaked_domain_blocked_seconds_total", "counter",
       "Time the domain's vCPUs were blocked (idle, waiting for an event).",
       [](const DomainTotals& d) { return double(d.blocked_ns) / kNsPerSecond; }},
      {"xenbaked_domain_offline_seconds_total", "counter", "Time the domain's vCPUs were offline.",
       [](const DomainTotals& d) { return double(d.offline_ns) / kNsPerSecond; }},
      {"xenbaked_domain_unknown_seconds_total", "counter",
       "Time of the domain's vCPUs the trace cannot vouch for (lost records, contradictions, "
       "before a vCPU's first record): the true time in each state lies between its figure and "
       "its figure plus this.",
       [](const DomainTotals& d) { return double(d.unknown_ns) / kNsPerSecond; }},
      {"xenbaked_domain_dispatches_total", "counter", "Times a vCPU of the domain was dispatched.",
       [](const DomainTotals& d) { return double(d.dispatches); }},
      {"xenbaked_domain_wakes_total", "counter", "Wake-ups of the domain's vCPUs.",
       [](const DomainTotals& d) { return double(d.wakes); }},
      {"xenbaked_domain_blocks_total", "counter", "Times the domain's vCPUs blocked.",
       [](const DomainTotals& d) { return double(d.blocks); }},
      {"xenbaked_domain_lost_records_total", "counter",
       "Trace records lost while the domain was running.",
       [](const DomainTotals& d) { return double(d.lost_records); }},
  };
  std::vector<std::string> labels;
  labels.reserve(view.totals.domains.size());
  for (const DomainTotals& d : view.totals.domains) labels.push_back(DomainLabels(d, view.names));
  for (const Family& f : kFamilies) {
    out.Family(f.name, f.type, f.help);
    for (size_t i = 0; i < view.totals.domains.size(); ++i) {
      out.Sample(f.name, labels[i], f.value(view.totals.domains[i]));
    }
  }
}

double CaptureRatio(const CpuTotals& c) {
  const uint64_t explained = c.elapsed_ns > c.lost_gap_ns ? c.elapsed_ns - c.lost_gap_ns : 0;
  return explained ? double(c.accounted_ns) / double(explained) : 1.0;
}

void CpuFamilies(const PublishView& view, Exposition& out) {
  const std::vector<LatestWindow> windows = LatestWindows(view.windows);
  out.Family("xenbaked_cpu_capture_ratio", "gauge",
             "Time accounted to domains (idle included) over time elapsed not explained by lost "
             "records, over the newest closed window of the shortest length.");
  for (const CpuTotals& c : view.totals.cpus) {
    const CpuTotals* w = windows.empty() ? nullptr : windows[0].Cpu(c.cpu);
    out.Sample("xenbaked_cpu_capture_ratio", fmt::format("cpu=\"{}\"", c.cpu),
               CaptureRatio(w ? *w : c));
  }
  out.Family("xenbaked_cpu_buffer_fill_ratio", "gauge",
             "Share of the CPU's trace buffer found unconsumed at the last drain pass.");
  for (const CpuHealth& h : view.health.cpus) {
    out.Sample("xenbaked_cpu_buffer_fill_ratio", fmt::format("cpu=\"{}\"", h.cpu), h.fill_ratio());
  }
}

void DaemonFamilies(const PublishView& view, Exposition& out) {
  const DaemonHealth& h = view.health;
  out.Family("xenbaked_up", "gauge", "1 while the daemon publishes.");
  out.Sample("xenbaked_up", "", 1);
  out.Family("xenbaked_heartbeat_timestamp_seconds", "gauge",
             "Wall-clock time of the newest publication (Unix seconds).");
  out.Sample("xenbaked_heartbeat_timestamp_seconds", "", double(view.realtime_ns) / kNsPerSecond);
  out.Family("xenbaked_uptime_seconds", "gauge", "Time since the daemon started.");
  out.Sample("xenbaked_uptime_seconds", "", double(h.uptime_ns) / kNsPerSecond);
  out.Family("xenbaked_records_total", "counter", "Trace records drained.");
  out.Sample("xenbaked_records_total", "", double(h.records));
  out.Family("xenbaked_lost_records_total", "counter",
             "Trace records the hypervisor reported lost (TRC_LOST_RECORDS).");
  out.Sample("xenbaked_lost_records_total", "", double(h.lost_records));
  out.Family("xenbaked_anomalies_total", "counter", "Ring or record anomalies found.");
  out.Sample("xenbaked_anomalies_total", "", double(h.anomalies));
  out.Family("xenbaked_publish_errors_total", "counter",
             "Publications that failed, e.g. a write of the accounting log (a full disk).");
  out.Sample("xenbaked_publish_errors_total", "", double(h.publish_errors));
  if (h.online_cpus_known) {
    out.Family("xenbaked_untraced_cpus", "gauge",
               "Online CPUs without a trace buffer (came online after the buffers were "
               "allocated): their time is not accounted.");
    out.Sample("xenbaked_untraced_cpus", "", double(h.untraced_cpus.size()));
  }
  out.Family("xenbaked_wakes_total", "counter", "Drain passes by what woke the loop.");
  out.Sample("xenbaked_wakes_total", "source=\"irq\"", double(h.wakes_irq));
  out.Sample("xenbaked_wakes_total", "source=\"timer\"", double(h.wakes_timer));
  out.Sample("xenbaked_wakes_total", "source=\"repost\"", double(h.wakes_repost));

  const LatencyHistogram& l = h.drain_latency;
  out.Family("xenbaked_drain_latency_seconds", "histogram",
             "Time from a wake (interrupt arrival, timer due) to the last consumer pointer "
             "published in that pass.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    cumulative += l.buckets[i];
    const double le = double(LatencyHistogram::BucketUpperNs(i)) / kNsPerSecond;
    out.Sample("xenbaked_drain_latency_seconds_bucket", fmt::format("le=\"{}\"", le),
               double(cumulative));
  }
  out.Sample("xenbaked_drain_latency_seconds_bucket", "le=\"+Inf\"", double(l.count));
  out.Sample("xenbaked_drain_latency_seconds_sum", "", double(l.sum_ns) / kNsPerSecond);
  out.Sample("xenbaked_drain_latency_seconds_count", "", double(l.count));
  out.Family("xenbaked_irq_to_drain_max_seconds", "gauge",
             "Longest wait, since start, from a trace interrupt's arrival to its drain's start.");
  out.Sample("xenbaked_irq_to_drain_max_seconds", "", double(h.irq_to_drain_max_ns) / kNsPerSecond);
  // Absent until the daemon has measured enough intervals (xenbaked/tbuf_advice.h).
  if (h.tbuf_advice.ready) {
    out.Family("xenbaked_recommended_tbuf_pages", "gauge",
               "Smallest per-CPU trace buffer (pages; Xen's boot option tbuf_size=N) that keeps "
               "each buffer below half full with a 2x margin on the worst drain latency at the "
               "peak per-CPU rate of the last minute.");
    out.Sample("xenbaked_recommended_tbuf_pages", "", double(h.tbuf_advice.recommended_pages));
  }
}

// The trace against Xen's cpu_time (xenbaked/reconcile.h). A counter pair per domain, over the
// same compared periods, rather than only a gauge of the difference: a scrape sees a period's
// difference only if it lands between two reconciliations, while increase() over the pair gives
// the drift over any range an operator picks, and the lag at either end stays bounded however
// long the range. The gauge of the last period is there for alerts on one bad period.
void ReconcileFamilies(const PublishView& view, Exposition& out) {
  if (view.reconcile == nullptr) return;
  const ReconcileReport& r = *view.reconcile;
  std::vector<std::string> labels;
  labels.reserve(r.domains.size());
  for (const DomainReconcile& d : r.domains)
    labels.push_back(fmt::format("domid=\"{}\",name=\"{}\"", d.domid,
                                 EscapeLabelValue(DomainName(view.names, d.domid))));
  struct Family {
    std::string_view domain_name;
    std::string_view host_name;
    std::string_view type;
    std::string_view help;
    double (*value)(const DomainReconcile&);
  };
  static constexpr Family kFamilies[] = {
      {"xenbaked_domain_reconcile_trace_running_seconds_total",
       "xenbaked_reconcile_trace_running_seconds_total", "counter",
       "Running time of the trace over the periods compared with the hypervisor's cpu_time "
       "(restarts with a new incarnation of the domain id).",
       [](const DomainReconcile& d) { return double(d.trace_running_total_ns) / kNsPerSecond; }},
      {"xenbaked_domain_reconcile_xen_cpu_seconds_total",
       "xenbaked_reconcile_xen_cpu_seconds_total", "counter",
       "The hypervisor's own cpu_time over the same periods: the drift from the trace is the "
       "difference of the two counters' increases.",
       [](const DomainReconcile& d) { return double(d.xen_cpu_total_ns) / kNsPerSecond; }},
      {"xenbaked_domain_reconcile_unknown_seconds_total",
       "xenbaked_reconcile_unknown_seconds_total", "counter",
       "Unknown time over the same periods: how much of a shortfall loss explains.",
       [](const DomainReconcile& d) { return double(d.unknown_total_ns) / kNsPerSecond; }},
      {"xenbaked_domain_reconcile_error_seconds", "xenbaked_reconcile_error_seconds", "gauge",
       "The hypervisor's cpu_time minus the trace's running time over the last reconciliation "
       "period (positive: the trace shows less).",
       [](const DomainReconcile& d) { return double(d.error_ns()) / kNsPerSecond; }},
      {"xenbaked_domain_reconcile_unexplained_periods_total",
       "xenbaked_reconcile_unexplained_periods_total", "counter",
       "Reconciliation periods whose difference neither unknown time nor the read lag explains.",
       [](const DomainReconcile& d) { return double(d.unexplained_periods); }},
  };
  for (const Family& f : kFamilies) {
    out.Family(f.domain_name, f.type, f.help);
    for (size_t i = 0; i < r.domains.size(); ++i)
      out.Sample(f.domain_name, labels[i], f.value(r.domains[i]));
    out.Family(f.host_name, f.type, f.help);
    out.Sample(f.host_name, "", f.value(r.host));
  }
  out.Family("xenbaked_reconcile_read_seconds", "gauge",
             "How long the last read of every vCPU's cpu_time took (one query per vCPU).");
  out.Sample("xenbaked_reconcile_read_seconds", "", double(r.read_ns) / kNsPerSecond);
  out.Family("xenbaked_reconcile_resets_total", "counter",
             "vCPU baselines restarted because a domain id was reused (the counter went back).");
  out.Sample("xenbaked_reconcile_resets_total", "", double(r.resets));
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderMetrics(const PublishView& view) {
  Exposition out;
  DaemonFamilies(view, out);
  DomainFamilies(view, out);
  CpuFamilies(view, out);
  ReconcileFamilies(view, out);
  return out.Take();
}

}  // namespace xenbaked::publish
