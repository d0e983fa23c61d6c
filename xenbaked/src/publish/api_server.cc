#include "xenbaked/publish/api_server.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <set>

#include "api_json.h"

namespace xenbaked::publish {

namespace {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using nlohmann::json;
using Message = std::shared_ptr<const std::string>;

// One interval's figures, owned, so requests between publications can be answered. The full
// window history is copied only while some client is connected (it is the large part).
struct Frame {
  uint64_t seq = 0;
  uint64_t realtime_ns = 0;
  AccountingSnapshot totals;
  std::vector<Window> latest;  // newest closed window of each length
  std::vector<std::deque<Window>> history;
  DaemonHealth health;
  DomainNames names;

  std::vector<const Window*> LatestPointers() const {
    std::vector<const Window*> out;
    for (const Window& w : latest) out.push_back(&w);
    return out;
  }
};

Message Line(const json& j) {
  return std::make_shared<const std::string>(
      j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

json ErrorJson(std::string_view what) {
  return {{"ok", false}, {"error", what}};
}

json Ok(const Frame& f, std::string_view cmd, json data) {
  return {{"ok", true}, {"cmd", cmd}, {"seq", f.seq}, {"data", std::move(data)}};
}

json AllDomains(const Frame& f) {
  json list = json::array();
  const std::vector<const Window*> latest = f.LatestPointers();
  for (const DomainTotals& d : f.totals.domains) {
    list.push_back(api::DomainJson(d, f.names, latest, /*vcpus=*/false));
  }
  return list;
}

json UpdateJson(const Frame& f) {
  json cpus = json::array();
  for (const CpuTotals& c : f.totals.cpus) cpus.push_back(api::CpuJson(c));
  return {{"event", "update"},
          {"seq", f.seq},
          {"realtime_ns", f.realtime_ns},
          {"data",
           {{"at_ns", f.totals.at_ns},
            {"domains", AllDomains(f)},
            {"cpus", std::move(cpus)},
            {"health", api::HealthJson(f.health)}}}};
}

// Answers one request line against the newest frame.
json Answer(const json& req, const Frame& f) {
  const std::string cmd = req.value("cmd", "");
  if (cmd == "domains") return Ok(f, cmd, AllDomains(f));
  if (cmd == "domain") {
    if (!req.contains("domid") || !req["domid"].is_number_unsigned()) {
      return ErrorJson("domain needs \"domid\": a non-negative integer");
    }
    const uint64_t domid = req["domid"].get<uint64_t>();
    for (const DomainTotals& d : f.totals.domains) {
      if (d.domid == domid && !d.destroyed) {
        return Ok(f, cmd, api::DomainJson(d, f.names, f.LatestPointers(), /*vcpus=*/true));
      }
    }
    return ErrorJson(fmt::format("no domain {}", domid));
  }
  if (cmd == "windows") {
    json list = json::array();
    for (const Window& w : f.latest) list.push_back(api::WindowJson(w, f.names));
    return Ok(f, cmd, std::move(list));
  }
  if (cmd == "history") {
    const uint64_t length = req.value("length_ns", uint64_t{0});
    json lengths = json::array();
    for (const std::deque<Window>& windows : f.history) {
      if (windows.empty() || (length != 0 && windows.front().length_ns != length)) continue;
      json list = json::array();
      for (const Window& w : windows) list.push_back(api::WindowJson(w, f.names));
      lengths.push_back({{"length_ns", windows.front().length_ns}, {"windows", std::move(list)}});
    }
    return Ok(f, cmd, std::move(lengths));
  }
  if (cmd == "health") return Ok(f, cmd, api::HealthJson(f.health));
  return ErrorJson(cmd.empty() ? "request needs \"cmd\"" : fmt::format("unknown cmd \"{}\"", cmd));
}

struct Shared;

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(local::socket socket, std::shared_ptr<Shared> shared);
  void Start() { Read(); }
  void Close();
  // Queues an update; drops it (and counts) when the queue is full.
  void OfferUpdate(const Message& update);
  bool subscribed() const { return subscribed_; }

 private:
  void Read();
  void OnLine(std::string_view line);
  void Enqueue(Message message);
  void Write();
  bool QueueFull() const;

  local::socket socket_;
  std::shared_ptr<Shared> shared_;
  asio::streambuf in_;
  std::deque<Message> out_;
  bool writing_ = false;
  bool reading_ = false;
  bool subscribed_ = false;
  bool closing_ = false;  // close once the queue has been written
  uint64_t missed_ = 0;
};

struct Shared {
  ApiServerConfig config;
  ApiServerStats stats;
  std::shared_ptr<const Frame> frame = std::make_shared<Frame>();
  std::set<std::shared_ptr<Client>> clients;
};

Client::Client(local::socket socket, std::shared_ptr<Shared> shared)
    : socket_(std::move(socket)),
      shared_(std::move(shared)),
      in_(shared_->config.max_request_bytes) {}

bool Client::QueueFull() const {
  return out_.size() >= shared_->config.max_queued_messages;
}

void Client::Close() {
  boost::system::error_code ignored;
  socket_.shutdown(local::socket::shutdown_both, ignored);
  socket_.close(ignored);
  shared_->clients.erase(shared_from_this());
}

void Client::Read() {
  if (reading_ || closing_ || !socket_.is_open()) return;
  reading_ = true;
  asio::async_read_until(
      socket_, in_, '\n',
      [self = shared_from_this()](const boost::system::error_code& ec, size_t bytes) {
        self->reading_ = false;
        if (ec == asio::error::not_found) {  // the buffer filled without a newline
          ++self->shared_->stats.oversize_closed;
          self->Enqueue(Line(ErrorJson("request too large; closing")));
          self->closing_ = true;
          return;
        }
        if (ec) {
          if (ec != asio::error::operation_aborted) self->Close();
          return;
        }
        std::string line(asio::buffers_begin(self->in_.data()),
                         asio::buffers_begin(self->in_.data()) + std::ptrdiff_t(bytes - 1));
        self->in_.consume(bytes);
        self->OnLine(line);
        // A client that does not read its answers is not read either: no unbounded queue.
        if (!self->QueueFull()) self->Read();
      });
}

void Client::OnLine(std::string_view line) {
  ++shared_->stats.requests;
  json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  json answer;
  if (req.is_discarded() || !req.is_object()) {
    ++shared_->stats.bad_requests;
    answer = ErrorJson("malformed request: expected one JSON object per line");
  } else if (req.value("cmd", "") == "subscribe" || req.value("cmd", "") == "unsubscribe") {
    subscribed_ = req["cmd"] == "subscribe";
    answer = Ok(*shared_->frame, req["cmd"].get<std::string>(), nullptr);
  } else {
    answer = Answer(req, *shared_->frame);
    if (!answer["ok"].get<bool>()) ++shared_->stats.bad_requests;
  }
  if (req.is_object() && req.contains("tag")) answer["tag"] = req["tag"];
  Enqueue(Line(answer));
}

void Client::Enqueue(Message message) {
  if (missed_ > 0) {  // the first message after a drop says how many updates were dropped
    message = std::make_shared<const std::string>(
        fmt::format("{{\"missed\":{},{}", missed_, std::string_view(*message).substr(1)));
    missed_ = 0;
  }
  out_.push_back(std::move(message));
  Write();
}

void Client::OfferUpdate(const Message& update) {
  if (closing_) return;
  if (QueueFull()) {
    ++missed_;
    ++shared_->stats.updates_dropped;
    return;
  }
  ++shared_->stats.updates_sent;
  Enqueue(update);
}

void Client::Write() {
  if (writing_ || out_.empty() || !socket_.is_open()) return;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(*out_.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      self->writing_ = false;
                      if (ec) {
                        if (ec != asio::error::operation_aborted) self->Close();
                        return;
                      }
                      self->out_.pop_front();
                      if (self->out_.empty() && self->closing_) {
                        self->Close();
                        return;
                      }
                      self->Write();
                      if (!self->QueueFull()) self->Read();
                    });
}

class ApiServerImpl final : public ApiServer {
 public:
  ApiServerImpl(asio::io_context& io, ApiServerConfig config)
      : acceptor_(io), shared_(std::make_shared<Shared>()) {
    shared_->config = std::move(config);
  }
  ~ApiServerImpl() override { Stop(); }

  tracefmt::Status Listen();
  void Publish(const PublishView& view) override;
  void Stop() override;
  size_t client_count() const override { return shared_->clients.size(); }
  const ApiServerStats& stats() const override { return shared_->stats; }

 private:
  void Accept();
  void Refuse(local::socket socket);

  local::acceptor acceptor_;
  std::shared_ptr<Shared> shared_;
  uint64_t seq_ = 0;
  bool listening_ = false;
};

tracefmt::Status ApiServerImpl::Listen() {
  const std::string& path = shared_->config.path;
  struct stat st {};
  // A socket left by a daemon that died is replaced; anything else at the path is not ours.
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument,
                                 fmt::format("{} exists and is not a socket", path));
    }
    ::unlink(path.c_str());
  }
  boost::system::error_code ec;
  acceptor_.open(local(), ec);
  if (!ec) acceptor_.bind(local::endpoint(path), ec);
  if (ec) {
    return tracefmt::MakeError(tracefmt::ErrorCode::kIo,
                               fmt::format("cannot bind {}: {}", path, ec.message()));
  }
  // Nobody can connect before listen(): the mode and group are right before anyone can.
  if (::chmod(path.c_str(), shared_->config.mode) != 0 ||
      (shared_->config.group && ::chown(path.c_str(), uid_t(-1), *shared_->config.group) != 0)) {
    return tracefmt::MakeSystemError(fmt::format("cannot set the mode or group of {}", path));
  }
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return tracefmt::MakeError(tracefmt::ErrorCode::kIo,
                               fmt::format("cannot listen on {}: {}", path, ec.message()));
  }
  listening_ = true;
  Accept();
  return {};
}

void ApiServerImpl::Accept() {
  acceptor_.async_accept(
      [this, shared = shared_](const boost::system::error_code& ec, local::socket socket) {
        if (ec == asio::error::operation_aborted || !listening_) return;
        if (!ec) {
          if (shared->clients.size() >= shared->config.max_clients) {
            Refuse(std::move(socket));
          } else {
            ++shared->stats.clients_accepted;
            auto client = std::make_shared<Client>(std::move(socket), shared);
            shared->clients.insert(client);
            client->Start();
          }
        }
        Accept();
      });
}

// A fresh socket's send buffer is empty: one short non-blocking write always fits.
void ApiServerImpl::Refuse(local::socket socket) {
  ++shared_->stats.clients_refused;
  boost::system::error_code ignored;
  socket.non_blocking(true, ignored);
  const Message line = Line(ErrorJson("too many clients"));
  socket.write_some(asio::buffer(*line), ignored);
  socket.close(ignored);
}

void ApiServerImpl::Publish(const PublishView& view) {
  auto frame = std::make_shared<Frame>();
  frame->seq = ++seq_;
  frame->realtime_ns = view.realtime_ns;
  frame->totals = view.totals;
  for (size_t i = 0; i < view.windows.length_count(); ++i) {
    const std::deque<Window>& closed = view.windows.windows(i);
    if (!closed.empty()) frame->latest.push_back(closed.back());
    if (!shared_->clients.empty()) frame->history.push_back(closed);
  }
  frame->health = view.health;
  frame->names = view.names;
  shared_->frame = frame;

  // Rendered once, shared by every subscriber.
  Message update;
  for (const std::shared_ptr<Client>& client :
       std::vector(shared_->clients.begin(), shared_->clients.end())) {
    if (!client->subscribed()) continue;
    if (!update) update = Line(UpdateJson(*frame));
    client->OfferUpdate(update);
  }
}

void ApiServerImpl::Stop() {
  if (!listening_) return;
  listening_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const std::shared_ptr<Client>& client :
       std::vector(shared_->clients.begin(), shared_->clients.end())) {
    client->Close();
  }
  ::unlink(shared_->config.path.c_str());
}

}  // namespace

tracefmt::Result<std::unique_ptr<ApiServer>> ApiServer::Start(asio::io_context& io,
                                                              ApiServerConfig config) {
  auto server = std::make_unique<ApiServerImpl>(io, std::move(config));
  if (tracefmt::Status s = server->Listen(); !s) return s.error();
  return std::unique_ptr<ApiServer>(std::move(server));
}

}  // namespace xenbaked::publish
