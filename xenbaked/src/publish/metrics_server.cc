// The one translation unit that includes Boost.Beast (a heavy header).
#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>

#include "xenbaked/publish/metrics.h"

namespace xenbaked::publish {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Body = std::shared_ptr<const std::string>;

class Connection;

struct Shared {
  MetricsServerConfig config;
  Body body = std::make_shared<const std::string>();
  // Open connections, oldest first. Each removes itself when it ends or is evicted.
  std::list<Connection*> connections;
  uint64_t scrapes = 0;
  uint64_t evicted = 0;
};

// One request, one response, then close: scrapers reconnect each time anyway.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    self_ = shared_->connections.insert(shared_->connections.end(), this);
  }
  ~Connection() { Forget(); }

  void Start() {
    stream_.expires_after(shared_->config.request_timeout);
    parser_.header_limit(8192);
    parser_.body_limit(0);
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->reading_ = false;
                       if (!ec) self->Respond();
                     });
  }
  // Still waiting for its request: the kind of connection a slow or idle client holds.
  bool reading() const { return reading_; }
  // Makes room for a new connection: leaves the count at once, and its pending read ends.
  void Evict() {
    Forget();
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }

 private:
  void Forget() {
    if (!counted_) return;
    counted_ = false;
    shared_->connections.erase(self_);
  }

  void Respond() {
    const http::request<http::empty_body>& req = parser_.get();
    body_ = shared_->body;  // this scrape's text, whatever Publish() does meanwhile
    response_.version(req.version());
    response_.keep_alive(false);
    response_.set(http::field::server, "xenbaked");
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      response_.result(http::status::method_not_allowed);
      response_.body() = "only GET\n";
    } else if (req.target() != "/metrics") {
      response_.result(http::status::not_found);
      response_.body() = "try /metrics\n";
    } else {
      ++shared_->scrapes;
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      if (req.method() == http::verb::get) response_.body() = *body_;
    }
    response_.prepare_payload();
    stream_.expires_after(shared_->config.write_timeout);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  Body body_;
  http::response<http::string_body> response_;
  std::list<Connection*>::iterator self_;
  bool counted_ = true;
  bool reading_ = true;
};

class MetricsServerImpl final : public MetricsServer {
 public:
  MetricsServerImpl(asio::io_context& io, MetricsServerConfig config)
      : acceptor_(io), shared_(std::make_shared<Shared>()) {
    shared_->config = std::move(config);
  }
  ~MetricsServerImpl() override { Stop(); }

  tracefmt::Status Listen() {
    beast::error_code ec;
    const asio::ip::address address = asio::ip::make_address(shared_->config.address, ec);
    if (ec) {
      return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument,
                                 fmt::format("bad metrics address {}", shared_->config.address));
    }
    const tcp::endpoint endpoint(address, shared_->config.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return tracefmt::MakeError(tracefmt::ErrorCode::kIo,
                                 fmt::format("cannot listen on {}:{}: {}", shared_->config.address,
                                             shared_->config.port, ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    listening_ = true;
    Accept();
    return {};
  }

  void Publish(const PublishView& view) override {
    shared_->body = std::make_shared<const std::string>(RenderMetrics(view));
  }
  void Stop() override {
    listening_ = false;
    beast::error_code ignored;
    acceptor_.close(ignored);
  }
  uint16_t port() const override { return port_; }
  uint64_t scrapes() const override { return shared_->scrapes; }
  uint64_t evicted() const override { return shared_->evicted; }

 private:
  void Accept() {
    acceptor_.async_accept([this, shared = shared_](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !listening_) return;
      if (!ec) Admit(std::move(socket), shared);
      Accept();
    });
  }

  // At the bound, the oldest connection still waiting for its request makes room: slow or idle
  // connections cannot keep a scraper out, which sends its request at once. When every
  // connection is being answered, the new one is closed at once: a flood cannot pile up work.
  static void Admit(tcp::socket socket, const std::shared_ptr<Shared>& shared) {
    if (shared->connections.size() >= shared->config.max_connections) {
      const auto oldest_reading =
          std::find_if(shared->connections.begin(), shared->connections.end(),
                       [](const Connection* c) { return c->reading(); });
      if (oldest_reading == shared->connections.end()) return;
      ++shared->evicted;
      (*oldest_reading)->Evict();
    }
    std::make_shared<Connection>(std::move(socket), shared)->Start();
  }

  tcp::acceptor acceptor_;
  std::shared_ptr<Shared> shared_;
  uint16_t port_ = 0;
  bool listening_ = false;
};

}  // namespace

tracefmt::Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(asio::io_context& io,
                                                                      MetricsServerConfig config) {
  auto server = std::make_unique<MetricsServerImpl>(io, std::move(config));
  if (tracefmt::Status s = server->Listen(); !s) return s.error();
  return std::unique_ptr<MetricsServer>(std::move(server));
}

}  // namespace xenbaked::publish
