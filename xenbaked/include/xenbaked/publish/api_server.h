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
// A request may carry "tag": any value, echoed in its response. Responses are
// {"ok":true,"cmd":...,"seq":N,"data":...} or {"ok":false,"error":"..."}.
//
// Nothing a client does can delay the daemon: every write is asynchronous, each client has a
// bounded queue of outgoing messages, and an update that finds the queue full is dropped for that
// client, counted, and reported in the next message it does get ("missed": N). A client that keeps
// sending requests without reading the answers is simply not read until its queue has room. A
// request longer than max_request_bytes closes the connection; so does a client beyond
// max_clients (after a one-line error).
//
//   auto api = ApiServer::Start(io, {.path = "/run/xenbaked/api.sock", .group = gid});
//   each interval: (*api)->Publish(view);
//   at shutdown:   (*api)->Stop();
#pragma once

#include <sys/types.h>

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
};

struct ApiServerStats {
  uint64_t clients_accepted = 0;
  uint64_t clients_refused = 0;  // beyond max_clients
  uint64_t requests = 0;
  uint64_t bad_requests = 0;
  uint64_t oversize_closed = 0;
  uint64_t updates_sent = 0;
  uint64_t updates_dropped = 0;  // summed over clients: what slow clients missed
};

class ApiServer {
 public:
  // Binds and listens (replacing a stale socket file at the path) and starts accepting.
  static tracefmt::Result<std::unique_ptr<ApiServer>> Start(boost::asio::io_context& io,
                                                            ApiServerConfig config);
  virtual ~ApiServer() = default;

  // Takes this interval's figures (copies what requests need) and queues an update for every
  // subscriber. Never blocks.
  virtual void Publish(const PublishView& view) = 0;
  // Closes the listener and every client, and removes the socket file.
  virtual void Stop() = 0;

  virtual size_t client_count() const = 0;
  virtual const ApiServerStats& stats() const = 0;
};

}  // namespace xenbaked::publish
