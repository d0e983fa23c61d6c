// simulator/sim_server.h — serves a SimulatedHost to other processes (the libxen shim).
//
// One thread runs a poll loop over the listening socket (sim_protocol.h), its clients and the
// host's VIRQ_TBUF eventfd, and forwards notifications to the bound event channel. Control
// requests are carried out on the host synchronously before the reply is sent, so when a
// consumer's xc_tbuf_disable returns, no further record is written — as on Xen.
//
//   auto host = SimulatedHost::Create({.shm_path = "/dev/shm/xenbake-sim", ...});
//   auto server = SimServer::Start(**host, [](SimOp op) { if (op == SimOp::kTbufDisable) ...; });
//   ... LD_PRELOAD=libxenbake-shim.so XENBAKE_SIM=/dev/shm/xenbake-sim xentrace ...
//   server->Stop();
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "simulator/sim_protocol.h"
#include "simulator/simulated_host.h"
#include "tracefmt/result.h"

namespace simulator {

class SimServer {
 public:
  // Called on the server thread after each control request has been carried out.
  using ControlObserver = std::function<void(SimOp op)>;

  // The host must have been created with a shm_path; the socket is SimSocketPath(shm_path).
  static tracefmt::Result<std::unique_ptr<SimServer>> Start(SimulatedHost& host,
                                                            ControlObserver observer = {});
  ~SimServer();
  void Stop();
  const std::string& socket_path() const { return socket_path_; }

 private:
  struct Client {
    int fd = -1;
    bool event_channel = false;
    bool pending = false;              // an event was sent and not yet unmasked
    bool fired_while_pending = false;  // delivered again on unmask
  };
  SimServer(SimulatedHost& host, ControlObserver observer)
      : host_(host), observer_(std::move(observer)) {}
  void Loop();
  bool HandleRequest(Client& client);  // false: drop the client
  void Reply(int fd, const SimReply& reply, const void* payload = nullptr);
  void RaiseVirq();

  SimulatedHost& host_;
  ControlObserver observer_;
  std::string socket_path_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  std::vector<std::unique_ptr<Client>> clients_;
  Client* bound_ = nullptr;  // the event channel, if any
};

}  // namespace simulator
