// xenbaked/publish/api_server.h — the Unix-socket JSON API: newline-delimited JSON requests and
// responses on a local stream socket, served on the daemon's io_context.
//
// Requests (one JSON object per line):
//   {"cmd":"domains"}                      every domain: totals and the 1 s / 10 s windows
//   {"cmd":"domain","domid":3}             one domain, with its vCPUs
//   {"cmd":"windows"}                      the newest closed window of each length, all domains
//   {"cmd":"history","length_ns":1000000000}  every kept window of that length (bounded)
//   {"cmd":"health"}                       the daemon's own health
//   {"cmd":"subscribe"} / {"cmd":"unsubscribe"}  an "update" message after each publication
// A request may carry "tag" (a short string, a number, a boolean or null), echoed in its
// response. Responses are {"ok":true,"cmd":...,"seq":N,"data":...} or {"ok":false,"error":"..."};
// before the first publication, requests for figures answer
// {"ok":false,"published":false,"error":"no publication yet"}. Parsing and answering:
// api_requests.h.
//
// The server runs on a thread of its own with its own io_context (own_thread, the default):
// accepting, reading, answering and writing never run on the daemon's drain thread. Publish()
// only copies the figures into an immutable frame and hands it over; the server's thread renders,
// at normal priority even in a SCHED_FIFO daemon.
// With own_thread = false it runs on the io_context given to Start, driven by the caller (tests).
//
// Nothing a client does can delay the daemon or lock other clients out: every write is
// asynchronous, each client has a bounded queue of outgoing messages, and an update that finds
// the queue full is dropped for that client, counted, and reported in the next message it does
// get ("missed": N). A client that keeps sending requests without reading the answers is not read
// until its queue has room; a message not written within write_timeout closes the client. A
// client neither subscribed nor asking anything for idle_timeout is told and closed. At
// max_clients, a new client closes the one idle the longest (not subscribed, owed nothing); when
// there is none it is refused with a one-line error. A request longer than max_request_bytes
// closes the connection after its error. A client that shuts down its sending side still gets
// every answer it asked for, then the connection closes.
//
//   auto api = ApiServer::Start(io, {.path = "/run/xenbaked/api.sock", .group = gid});
//   each interval (any one thread): (*api)->Publish(view);
//   at shutdown (the same thread):  (*api)->Stop();
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tracefmt/result.h"
#include "xenbaked/publish/publish_view.h"

namespace boost::asio {
class io_context;
}

namespace xenbaked::publish {

struct ApiServerConfig {
  std::string path = "/run/xenbaked/api.sock";
  mode_t mode = 0660;
  std::optional<gid_t> group;
  size_t max_clients = 64;
  size_t max_request_bytes = 4096;
  size_t max_queued_messages = 8;  // per client
  // A client that is not subscribed and owes nothing is closed when it has sent no request for
  // this long.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  // A client is closed when one message to it has not been written in this long (it does not
  // read).
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // Serve on a thread of its own (the daemon); false: on the io_context given to Start.
  bool own_thread = true;
};

struct ApiServerStats {
  uint64_t clients_accepted = 0;
  uint64_t clients_refused = 0;  // beyond max_clients, with no idle client to close instead
  uint64_t clients_evicted = 0;  // the idlest client, closed to make room for a new one
  uint64_t idle_closed = 0;      // idle_timeout
  uint64_t write_timeouts = 0;   // write_timeout
  uint64_t requests = 0;
  uint64_t bad_requests = 0;
  uint64_t oversize_closed = 0;
  uint64_t updates_sent = 0;
  uint64_t updates_dropped = 0;  // summed over clients: what slow clients missed
  uint64_t internal_errors = 0;  // exceptions that escaped a handler (the server goes on)
};

class ApiServer {
 public:
  // Binds and listens (replacing a stale socket file at the path) and starts accepting, on a
  // thread of its own unless config.own_thread is false (then on `io`).
  static tracefmt::Result<std::unique_ptr<ApiServer>> Start(boost::asio::io_context& io,
                                                            ApiServerConfig config);
  virtual ~ApiServer() = default;

  // Takes this interval's figures (copies what requests need) and has an update sent to every
  // subscriber. Renders nothing and never waits for a client.
  virtual void Publish(const PublishView& view) = 0;
  // Closes the listener and every client, ends the server's thread (joined), and removes the
  // socket file.
  virtual void Stop() = 0;

  // Both readable from any thread.
  virtual size_t client_count() const = 0;
  virtual ApiServerStats stats() const = 0;
};

}  // namespace xenbaked::publish
