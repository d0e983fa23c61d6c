// xenbaked/publish/metrics.h — Prometheus metrics over HTTP on localhost.
//
// As xen_exporter does, a scrape only serialises a cache: the exposition text is rendered once
// per interval by Publish(), and GET /metrics sends that string. Scrapes never touch the
// accounting and cannot slow the daemon (asynchronous, bounded connections, each with a deadline).
// Slow or idle connections cannot keep scrapers out: a connection must send its request within
// request_timeout, and at max_connections a new connection closes the oldest one still waiting
// for its request.
// Boost.Beast is confined to metrics_server.cc.
//
//   auto metrics = MetricsServer::Start(io, {.port = 9587});   // 127.0.0.1 unless configured
//   each interval: (*metrics)->Publish(view);
//   at shutdown:   (*metrics)->Stop();
//
// Families (base units, `_total` counters, HELP and TYPE for each):
//   xenbaked_up, xenbaked_heartbeat_timestamp_seconds, xenbaked_uptime_seconds
//   xenbaked_domain_{cpu,runnable,blocked,offline}_seconds_total{domid,name}
//   xenbaked_domain_{dispatches,wakes,blocks,lost_records}_total{domid,name}
//   xenbaked_records_total, xenbaked_lost_records_total, xenbaked_anomalies_total
//   xenbaked_wakes_total{source="irq"|"timer"|"repost"}
//   xenbaked_cpu_capture_ratio{cpu} (newest 1 s window), xenbaked_cpu_buffer_fill_ratio{cpu}
//   xenbaked_drain_latency_seconds (histogram), xenbaked_untraced_cpus
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tracefmt/result.h"
#include "xenbaked/publish/publish_view.h"

namespace boost::asio {
class io_context;
}

namespace xenbaked::publish {

// The exposition text (format 0.0.4) for one interval. Pure, for the server and tests.
std::string RenderMetrics(const PublishView& view);
// A label value escaped per the exposition format (backslash, double quote, newline).
std::string EscapeLabelValue(std::string_view value);

struct MetricsServerConfig {
  std::string address = "127.0.0.1";
  uint16_t port = 9587;  // 0: any free port (tests); see port()
  size_t max_connections = 16;
  // A connection that has not sent its whole request by then is closed (scrapers send it at once).
  std::chrono::milliseconds request_timeout{std::chrono::seconds(3)};
  // A response not written by then (the client does not read) closes the connection.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
};

class MetricsServer {
 public:
  static tracefmt::Result<std::unique_ptr<MetricsServer>> Start(boost::asio::io_context& io,
                                                                MetricsServerConfig config);
  virtual ~MetricsServer() = default;

  virtual void Publish(const PublishView& view) = 0;
  virtual void Stop() = 0;
  virtual uint16_t port() const = 0;  // the bound port
  virtual uint64_t scrapes() const = 0;
  virtual uint64_t evicted() const = 0;  // connections closed to make room, still without request
};

}  // namespace xenbaked::publish
