// Prometheus metrics: the exposition text, and GET /metrics over real HTTP on 127.0.0.1 with an
// ephemeral port, driven by the test's io_context.
#include "xenbaked/publish/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <map>
#include <set>
#include <sstream>

#include "fake_host.h"

namespace xenbaked::publish {
namespace {

using testing::FakeHost;

struct Parsed {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::map<std::string, double> samples;  // "name{labels}" → value
  std::vector<std::string> problems;
};

// A small exposition parser: every sample must follow the HELP and TYPE of its family.
Parsed ParseExposition(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const size_t name_end = line.find(' ', 7);
      auto& into = line[2] == 'H' ? p.help : p.type;
      into[line.substr(7, name_end - 7)] = line.substr(name_end + 1);
      continue;
    }
    const size_t value_at = line.rfind(' ');
    const std::string series = line.substr(0, value_at);
    std::string family = series.substr(0, series.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (!p.type.contains(family) && family.ends_with(s)) family.resize(family.size() - s.size());
    }
    if (!p.help.contains(family) || !p.type.contains(family)) {
      p.problems.push_back("no HELP/TYPE before " + series);
    }
    p.samples[series] = std::stod(line.substr(value_at + 1));
  }
  return p;
}

TEST(Metrics, ReconciliationIsACounterPairPerDomainAndForTheHost) {
  FakeHost host;
  host.Advance(1);
  ReconcileReport r;
  r.reads = 3;
  r.read_ns = 2'000'000;
  r.resets = 1;
  DomainReconcile& d = r.domains.emplace_back();
  d.domid = 1;
  d.vcpus = 2;
  d.trace_running_ns = 400'000'000;
  d.xen_cpu_ns = 410'000'000;
  d.trace_running_total_ns = 2'000'000'000;
  d.xen_cpu_total_ns = 2'010'000'000;
  d.unexplained_periods = 1;
  r.host = d;
  r.host.domid = 0;
  PublishView view = host.View(1);
  view.reconcile = &r;
  const std::string text = RenderMetrics(view);
  Parsed p = ParseExposition(text);
  EXPECT_TRUE(p.problems.empty()) << p.problems.front();
  EXPECT_EQ(p.type["xenbaked_domain_reconcile_xen_cpu_seconds_total"], "counter");
  EXPECT_EQ(p.type["xenbaked_domain_reconcile_error_seconds"], "gauge");
  EXPECT_DOUBLE_EQ(
      p.samples[R"(xenbaked_domain_reconcile_xen_cpu_seconds_total{domid="1",name="guest1"})"],
      2.01);
  EXPECT_DOUBLE_EQ(
      p.samples
          [R"(xenbaked_domain_reconcile_trace_running_seconds_total{domid="1",name="guest1"})"],
      2.0);
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_domain_reconcile_error_seconds{domid="1",name="guest1"})"],
                   0.01);
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_reconcile_xen_cpu_seconds_total"], 2.01);
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_reconcile_unexplained_periods_total"], 1);
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_reconcile_read_seconds"], 0.002);
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_reconcile_resets_total"], 1);
  // A daemon that does not reconcile publishes none of it.
  EXPECT_EQ(RenderMetrics(host.View(1)).find("reconcile"), std::string::npos);
}

TEST(Metrics, RendersFamiliesWithHelpTypeAndBaseUnits) {
  FakeHost host;
  host.Advance(1);
  host.Advance(2);
  host.names[2] = "quote\"back\\slash\nnewline";
  const std::string text = RenderMetrics(host.View(/*monotonic_ns=*/1));
  Parsed p = ParseExposition(text);
  EXPECT_TRUE(p.problems.empty()) << p.problems.front();
  EXPECT_EQ(p.type["xenbaked_domain_cpu_seconds_total"], "counter");
  EXPECT_EQ(p.type["xenbaked_cpu_capture_ratio"], "gauge");
  EXPECT_EQ(p.type["xenbaked_drain_latency_seconds"], "histogram");
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_domain_cpu_seconds_total{domid="1",name="guest1"})"],
                   0.002);
  EXPECT_DOUBLE_EQ(
      p.samples[R"(xenbaked_domain_runnable_seconds_total{domid="0",name="Domain-0"})"], 0.001);
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_domain_dispatches_total{domid="1",name="guest1"})"], 2);
  // The newline is a control character: sanitised to '?' before escaping; quotes and
  // backslashes are escaped.
  EXPECT_TRUE(p.samples.contains(
      R"(xenbaked_domain_blocked_seconds_total{domid="2",name="quote\"back\\slash?newline"})"))
      << text;
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_cpu_capture_ratio{cpu="1"})"], 0.999);
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_wakes_total{source="irq"})"], 6);
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_lost_records_total"], 2);
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_up"], 1);
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_drain_latency_seconds_bucket{le="+Inf"})"], 2);
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_drain_latency_seconds_count"], 2);
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_drain_latency_seconds_bucket{le="3.2768e-05"})"], 2);
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_drain_latency_seconds_bucket{le="1.6384e-05"})"], 0);
}

// Online CPUs without a trace buffer: a gauge when the hypervisor listed its CPUs, no sample
// (rather than a reassuring 0) when it could not.
TEST(Metrics, UntracedCpusOnlyWhenKnown) {
  FakeHost host;
  host.Advance(1);
  host.health.online_cpus_known = true;
  host.health.untraced_cpus = {5, 7};
  Parsed p = ParseExposition(RenderMetrics(host.View(/*monotonic_ns=*/1)));
  EXPECT_EQ(p.type["xenbaked_untraced_cpus"], "gauge");
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_untraced_cpus"], 2);
  host.health.online_cpus_known = false;
  p = ParseExposition(RenderMetrics(host.View(/*monotonic_ns=*/2)));
  EXPECT_FALSE(p.samples.contains("xenbaked_untraced_cpus"));
}

// The recommended trace buffer size: a gauge once the daemon has advice, no sample before.
TEST(Metrics, RecommendedTbufPagesOnlyOnceAdvised) {
  FakeHost host;
  host.Advance(1);
  Parsed p = ParseExposition(RenderMetrics(host.View(/*monotonic_ns=*/1)));
  EXPECT_FALSE(p.samples.contains("xenbaked_recommended_tbuf_pages"));
  host.health.tbuf_advice.ready = true;
  host.health.tbuf_advice.recommended_pages = 96;
  p = ParseExposition(RenderMetrics(host.View(/*monotonic_ns=*/2)));
  EXPECT_TRUE(p.problems.empty()) << p.problems.front();
  EXPECT_EQ(p.type["xenbaked_recommended_tbuf_pages"], "gauge");
  EXPECT_DOUBLE_EQ(p.samples["xenbaked_recommended_tbuf_pages"], 96);
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
}

// A TCP connection to 127.0.0.1:port (accepted once the server's io_context runs).
int ConnectLoopback(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

// A server on an ephemeral port of 127.0.0.1, run by `io`.
std::unique_ptr<MetricsServer> StartOnLoopback(boost::asio::io_context& io) {
  MetricsServerConfig config;
  config.port = 0;
  auto server = MetricsServer::Start(io, config);
  EXPECT_TRUE(server) << server.error().Describe();
  return server ? std::move(*server) : nullptr;
}

// GETs `target` from 127.0.0.1:port while the server runs on `io`; returns the whole response.
std::string HttpGet(boost::asio::io_context& io, uint16_t port, const std::string& target) {
  const int fd = ConnectLoopback(port);
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0), ssize_t(request.size()));
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  std::string response;
  for (int turn = 0; turn < 2000; ++turn) {
    io.run_one_for(std::chrono::milliseconds(5));
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, size_t(n));
    if (n == 0) break;  // the server closed: the response is complete
  }
  ::close(fd);
  return response;
}

TEST(Metrics, ServesTheCachedTextOverHttpOnLocalhost) {
  boost::asio::io_context io;
  std::unique_ptr<MetricsServer> server = StartOnLoopback(io);
  ASSERT_TRUE(server);
  ASSERT_NE(server->port(), 0);
  FakeHost host;
  host.Advance(3);
  server->Publish(host.View(1));

  const std::string ok = HttpGet(io, server->port(), "/metrics");
  ASSERT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string body = ok.substr(ok.find("\r\n\r\n") + 4);
  EXPECT_EQ(body, RenderMetrics(host.View(1)));
  Parsed p = ParseExposition(body);
  EXPECT_TRUE(p.problems.empty());
  EXPECT_DOUBLE_EQ(p.samples[R"(xenbaked_domain_cpu_seconds_total{domid="2",name="guest2"})"],
                   0.006);

  const std::string missing = HttpGet(io, server->port(), "/other");
  EXPECT_EQ(missing.rfind("HTTP/1.1 404", 0), 0u) << missing;
  EXPECT_EQ(server->scrapes(), 1u);
}

// Connections that never send a request (slowloris) cannot keep scrapes out: more of them than
// the server allows are open, and a scrape still gets its answer.
TEST(Metrics, ScrapesSucceedWhileSlowConnectionsFillTheLimit) {
  boost::asio::io_context io;
  std::unique_ptr<MetricsServer> server = StartOnLoopback(io);
  ASSERT_TRUE(server);
  FakeHost host;
  host.Advance(1);
  server->Publish(host.View(1));

  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    const int fd = ConnectLoopback(server->port());
    // Half a request line, never finished.
    ASSERT_EQ(::send(fd, "GET /met", 8, 0), 8);
    slow.push_back(fd);
  }
  for (int i = 0; i < 3; ++i) {
    const std::string scrape = HttpGet(io, server->port(), "/metrics");
    EXPECT_EQ(scrape.rfind("HTTP/1.1 200", 0), 0u) << "scrape " << i << ": " << scrape;
  }
  EXPECT_EQ(server->scrapes(), 3u);
  EXPECT_GE(server->evicted(), 3u);  // at least one slow connection per scrape
  for (const int fd : slow) ::close(fd);
}

}  // namespace
}  // namespace xenbaked::publish
