#include "xenbaked/publish/api_server.h"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "xenbaked/publish/api_requests.h"

namespace xenbaked::publish {

namespace {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using Message = std::shared_ptr<const std::string>;

Message MakeMessage(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

// Counted on the server's thread, read from any (health, metrics, tests).
struct AtomicStats {
  std::atomic<uint64_t> clients_accepted{0};
  std::atomic<uint64_t> clients_refused{0};
  std::atomic<uint64_t> clients_evicted{0};
  std::atomic<uint64_t> idle_closed{0};
  std::atomic<uint64_t> write_timeouts{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bad_requests{0};
  std::atomic<uint64_t> oversize_closed{0};
  std::atomic<uint64_t> updates_sent{0};
  std::atomic<uint64_t> updates_dropped{0};
  std::atomic<uint64_t> internal_errors{0};

  ApiServerStats Load() const {
    return {.clients_accepted = clients_accepted.load(),
            .clients_refused = clients_refused.load(),
            .clients_evicted = clients_evicted.load(),
            .idle_closed = idle_closed.load(),
            .write_timeouts = write_timeouts.load(),
            .requests = requests.load(),
            .bad_requests = bad_requests.load(),
            .oversize_closed = oversize_closed.load(),
            .updates_sent = updates_sent.load(),
            .updates_dropped = updates_dropped.load(),
            .internal_errors = internal_errors.load()};
  }
};

class Client;

struct Shared {
  ApiServerConfig config;
  AtomicStats stats;
  std::atomic<size_t> client_count{0};

  // The newest publication: set by Publish on the publishing thread, read by the server's.
  std::shared_ptr<const ApiFrame> Frame() {
    std::lock_guard lock(frame_mutex);
    return frame;
  }
  void SetFrame(std::shared_ptr<const ApiFrame> f) {
    std::lock_guard lock(frame_mutex);
    frame = std::move(f);
  }

  // The rest only on the server's thread.
  std::set<std::shared_ptr<Client>> clients;
  uint64_t activity_clock = 0;  // orders clients by their last activity, for eviction
  bool stopping = false;

 private:
  std::mutex frame_mutex;
  std::shared_ptr<const ApiFrame> frame;  // null until the first publication
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(local::socket socket, std::shared_ptr<Shared> shared);
  void Start();
  void Close();
  // Queues an update; drops it (and counts) when the queue is full.
  void OfferUpdate(const Message& update);
  // A client that may be closed to make room for a new one: nothing asked, nothing owed.
  bool Evictable() const { return !subscribed_ && !writing_ && out_.empty() && !closing_; }
  uint64_t last_activity() const { return last_activity_; }
  bool subscribed() const { return subscribed_; }
  // Says why, without waiting for the client to read, and closes.
  void CloseWithNotice(std::string_view why);

 private:
  void Read();
  void OnLine(std::string_view line);
  void OnEndOfInput();
  void Enqueue(Message message);
  void Write();
  bool QueueFull() const { return out_.size() >= shared_->config.max_queued_messages; }
  // One timer per client: the write deadline while a message is being written, the idle
  // deadline while the client owes nothing and is not subscribed; none for a quiet subscriber.
  void ArmTimer();
  void OnTimer();

  local::socket socket_;
  std::shared_ptr<Shared> shared_;
  asio::streambuf in_;
  asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  std::deque<Message> out_;
  bool writing_ = false;
  bool reading_ = false;
  bool subscribed_ = false;
  bool closing_ = false;  // close once the queue has been written
  bool closed_ = false;
  uint64_t missed_ = 0;
  uint64_t last_activity_ = 0;
};

Client::Client(local::socket socket, std::shared_ptr<Shared> shared)
    : socket_(std::move(socket)),
      shared_(std::move(shared)),
      in_(shared_->config.max_request_bytes),
      timer_(socket_.get_executor()) {}

void Client::Start() {
  last_activity_ = ++shared_->activity_clock;
  Read();
  ArmTimer();
}

void Client::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(local::socket::shutdown_both, ignored);
  socket_.close(ignored);
  timer_.cancel();
  shared_->clients.erase(shared_from_this());
  shared_->client_count = shared_->clients.size();
}

void Client::CloseWithNotice(std::string_view why) {
  // Best effort and never blocking: an evicted or timed-out client may not be reading.
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
  const std::string line = ErrorLine(why);
  socket_.write_some(asio::buffer(line), ignored);
  Close();
}

void Client::ArmTimer() {
  if (closed_) return;
  const ApiServerConfig& c = shared_->config;
  const uint64_t generation = ++timer_generation_;
  if (writing_) {
    timer_.expires_after(c.write_timeout);
  } else if (!subscribed_ && !closing_) {
    timer_.expires_after(c.idle_timeout);
  } else {
    timer_.cancel();
    return;
  }
  timer_.async_wait([self = shared_from_this(), generation](const boost::system::error_code& ec) {
    if (!ec && generation == self->timer_generation_) self->OnTimer();
  });
}

void Client::OnTimer() {
  if (closed_) return;
  if (writing_) {
    ++shared_->stats.write_timeouts;
    Close();  // it does not read: a notice could not reach it either
    return;
  }
  ++shared_->stats.idle_closed;
  CloseWithNotice(fmt::format("idle for {} ms without a request or a subscription; closing",
                              shared_->config.idle_timeout.count()));
}

void Client::Read() {
  if (reading_ || closing_ || closed_) return;
  reading_ = true;
  asio::async_read_until(
      socket_, in_, '\n',
      [self = shared_from_this()](const boost::system::error_code& ec, size_t bytes) {
        self->reading_ = false;
        if (self->closed_) return;
        if (ec == asio::error::not_found) {  // the buffer filled without a newline
          ++self->shared_->stats.oversize_closed;
          self->closing_ = true;
          self->Enqueue(MakeMessage(ErrorLine("request too large; closing")));
          self->ArmTimer();
          return;
        }
        if (ec == asio::error::eof) {
          self->OnEndOfInput();
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
        self->ArmTimer();
      });
}

// The client shut down its sending side (or closed): it still gets every answer it asked for,
// including one to a last request without its newline, and is closed once they are written.
void Client::OnEndOfInput() {
  if (in_.size() > 0) {
    std::string line(asio::buffers_begin(in_.data()), asio::buffers_end(in_.data()));
    in_.consume(in_.size());
    OnLine(line);
  }
  closing_ = true;
  if (!writing_ && out_.empty()) {
    Close();
    return;
  }
  ArmTimer();
}

void Client::OnLine(std::string_view line) {
  ++shared_->stats.requests;
  last_activity_ = ++shared_->activity_clock;
  const std::shared_ptr<const ApiFrame> frame = shared_->Frame();
  ApiAnswer answer = AnswerRequest(line, frame.get());
  if (!answer.ok) ++shared_->stats.bad_requests;
  if (answer.action != ApiAction::kNone) subscribed_ = answer.action == ApiAction::kSubscribe;
  Enqueue(MakeMessage(std::move(answer.line)));
}

void Client::Enqueue(Message message) {
  if (closed_) return;
  if (missed_ > 0) {  // the first message after a drop says how many updates were dropped
    message = MakeMessage(
        fmt::format("{{\"missed\":{},{}", missed_, std::string_view(*message).substr(1)));
    missed_ = 0;
  }
  out_.push_back(std::move(message));
  Write();
}

void Client::OfferUpdate(const Message& update) {
  if (closing_ || closed_) return;
  if (QueueFull()) {
    ++missed_;
    ++shared_->stats.updates_dropped;
    return;
  }
  ++shared_->stats.updates_sent;
  Enqueue(update);
}

void Client::Write() {
  if (writing_ || out_.empty() || closed_) return;
  writing_ = true;
  ArmTimer();
  asio::async_write(socket_, asio::buffer(*out_.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      self->writing_ = false;
                      if (self->closed_) return;
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
                      self->ArmTimer();
                    });
}

class ApiServerImpl final : public ApiServer {
 public:
  ApiServerImpl(asio::io_context& caller_io, ApiServerConfig config)
      : own_io_(config.own_thread ? std::make_unique<asio::io_context>(1) : nullptr),
        io_(own_io_ ? *own_io_ : caller_io),
        acceptor_(io_),
        shared_(std::make_shared<Shared>()) {
    shared_->config = std::move(config);
  }
  ~ApiServerImpl() override { Stop(); }

  tracefmt::Status Listen();
  void Publish(const PublishView& view) override;
  void Stop() override;
  size_t client_count() const override { return shared_->client_count; }
  ApiServerStats stats() const override { return shared_->stats.Load(); }

 private:
  void Accept();
  void Admit(local::socket socket);
  void Refuse(local::socket socket);
  void CloseAll();
  static void NotifySubscribers(Shared& shared, const std::shared_ptr<const ApiFrame>& frame);

  std::unique_ptr<asio::io_context> own_io_;  // declared first: outlives the sockets below
  asio::io_context& io_;
  local::acceptor acceptor_;
  std::shared_ptr<Shared> shared_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  uint64_t seq_ = 0;  // on the publishing thread
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
  if (own_io_) {
    work_.emplace(own_io_->get_executor());
    thread_ = std::thread([io = own_io_.get(), shared = shared_] {
      // Threads inherit the daemon's SCHED_FIFO (--rt-priority): serving clients must never
      // compete with the drain at its priority. Lowering one's own policy needs no privilege.
      const sched_param normal{};
      ::pthread_setschedparam(::pthread_self(), SCHED_OTHER, &normal);
      // Handlers contain their own errors; should one still throw, the server goes on serving.
      for (;;) {
        try {
          io->run();
          return;
        } catch (const std::exception&) {
          ++shared->stats.internal_errors;
        }
      }
    });
  }
  return {};
}

void ApiServerImpl::Accept() {
  acceptor_.async_accept(
      [this, shared = shared_](const boost::system::error_code& ec, local::socket socket) {
        if (ec == asio::error::operation_aborted || shared->stopping) return;
        if (!ec) Admit(std::move(socket));
        Accept();
      });
}

// At the limit, the client idle the longest (not subscribed, owed nothing) makes room: idle
// clients cannot lock others out. When every client is busy or subscribed, the new one is refused.
void ApiServerImpl::Admit(local::socket socket) {
  if (shared_->clients.size() >= shared_->config.max_clients) {
    std::shared_ptr<Client> idlest;
    for (const std::shared_ptr<Client>& c : shared_->clients) {
      if (c->Evictable() && (!idlest || c->last_activity() < idlest->last_activity())) idlest = c;
    }
    if (!idlest) {
      Refuse(std::move(socket));
      return;
    }
    ++shared_->stats.clients_evicted;
    idlest->CloseWithNotice("too many clients: closing the one idle the longest");
  }
  ++shared_->stats.clients_accepted;
  auto client = std::make_shared<Client>(std::move(socket), shared_);
  shared_->clients.insert(client);
  shared_->client_count = shared_->clients.size();
  client->Start();
}

// A fresh socket's send buffer is empty: one short non-blocking write always fits.
void ApiServerImpl::Refuse(local::socket socket) {
  ++shared_->stats.clients_refused;
  boost::system::error_code ignored;
  socket.non_blocking(true, ignored);
  const std::string line = ErrorLine("too many clients");
  socket.write_some(asio::buffer(line), ignored);
  socket.close(ignored);
}

// On the server's thread: every subscriber gets the update, rendered once.
void ApiServerImpl::NotifySubscribers(Shared& shared,
                                      const std::shared_ptr<const ApiFrame>& frame) {
  if (shared.stopping) return;
  Message update;
  for (const std::shared_ptr<Client>& client :
       std::vector(shared.clients.begin(), shared.clients.end())) {
    if (!client->subscribed()) continue;
    if (!update) update = MakeMessage(UpdateLine(*frame));
    client->OfferUpdate(update);
  }
}

// On the publishing thread: copy the figures into an immutable frame and hand it over. All
// rendering happens on the server's thread.
void ApiServerImpl::Publish(const PublishView& view) {
  if (!listening_) return;
  // The full window history is copied only while some client is connected (it is the large part).
  std::shared_ptr<const ApiFrame> frame =
      MakeApiFrame(view, ++seq_, /*with_history=*/shared_->client_count > 0);
  shared_->SetFrame(frame);
  asio::post(io_, [shared = shared_, frame] { NotifySubscribers(*shared, frame); });
}

void ApiServerImpl::CloseAll() {
  shared_->stopping = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const std::shared_ptr<Client>& client :
       std::vector(shared_->clients.begin(), shared_->clients.end())) {
    client->Close();
  }
}

void ApiServerImpl::Stop() {
  if (!listening_) return;
  listening_ = false;
  if (own_io_) {
    // Closing every socket and timer leaves the server's io_context without work: run()
    // returns and the thread ends. Nothing of this object is touched after the join.
    asio::post(*own_io_, [this] { CloseAll(); });
    work_.reset();
    thread_.join();
  } else {
    CloseAll();
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
