#include "simulator/sim_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "socket_io.h"

namespace simulator {
namespace {

constexpr uint32_t kMaxPayloadBytes = 1u << 16;

}  // namespace

tracefmt::Result<std::unique_ptr<SimServer>> SimServer::Start(SimulatedHost& host,
                                                              ControlObserver observer) {
  std::unique_ptr<SimServer> server(new SimServer(host, std::move(observer)));
  // The path comes from the host's memory: one simulator per file.
  server->socket_path_ = SimSocketPath(host.shm_path());
  if (host.shm_path().empty())
    return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument,
                               "the host has no shared-memory file to serve");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (server->socket_path_.size() >= sizeof addr.sun_path)
    return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument, "socket path too long");
  std::memcpy(addr.sun_path, server->socket_path_.c_str(), server->socket_path_.size() + 1);
  server->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server->listen_fd_ < 0) return tracefmt::MakeSystemError("socket");
  ::unlink(server->socket_path_.c_str());
  if (::bind(server->listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return tracefmt::MakeSystemError("bind " + server->socket_path_);
  ::chmod(server->socket_path_.c_str(), 0600);
  if (::listen(server->listen_fd_, 16) != 0) return tracefmt::MakeSystemError("listen");
  server->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (server->stop_fd_ < 0) return tracefmt::MakeSystemError("eventfd");
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

SimServer::~SimServer() {
  Stop();
}

void SimServer::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  for (auto& c : clients_) ::close(c->fd);
  clients_.clear();
  bound_ = nullptr;
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(socket_path_.c_str());
    listen_fd_ = -1;
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
  stop_fd_ = -1;
}

void SimServer::Loop() {
  for (;;) {
    std::vector<pollfd> fds = {
        {stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}, {host_.notify_fd(), POLLIN, 0}};
    for (auto& c : clients_) fds.push_back({c->fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    if (fds[2].revents & POLLIN) {
      host_.AckNotification();
      RaiseVirq();
    }
    std::vector<Client*> dead;
    for (size_t i = 3; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Client& c = *clients_[i - 3];
      if (!HandleRequest(c)) dead.push_back(&c);
    }
    for (Client* d : dead) {
      if (bound_ == d) bound_ = nullptr;  // closing the handle unbinds the VIRQ
      ::close(d->fd);
      std::erase_if(clients_, [d](const auto& c) { return c.get() == d; });
    }
    if (fds[1].revents & POLLIN) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) clients_.push_back(std::make_unique<Client>(Client{fd}));
    }
  }
}

void SimServer::RaiseVirq() {
  if (bound_ == nullptr) return;  // nobody bound VIRQ_TBUF: Xen drops it too
  if (bound_->pending) {
    bound_->fired_while_pending = true;
    return;
  }
  bound_->pending = true;
  SendAll(bound_->fd, &kSimEventByte, 1);
}

void SimServer::Reply(int fd, const SimReply& reply, const void* payload) {
  SendAll(fd, &reply, sizeof reply);
  if (reply.payload_bytes > 0) SendAll(fd, payload, reply.payload_bytes);
}

bool SimServer::HandleRequest(Client& client) {
  SimRequest req;
  if (!RecvAll(client.fd, &req, sizeof req) || req.magic != kSimProtocolMagic ||
      req.payload_bytes > kMaxPayloadBytes)
    return false;
  std::vector<uint8_t> payload(req.payload_bytes);
  if (!payload.empty() && !RecvAll(client.fd, payload.data(), payload.size())) return false;
  if (client.event_channel) {
    if (req.op != SimOp::kUnmask) return false;
    client.pending = false;
    if (client.fired_while_pending) {
      client.fired_while_pending = false;
      RaiseVirq();
    }
    return true;
  }
  SimReply reply;
  std::vector<SimDomainEntry> domains;
  std::vector<uint8_t> online_map;
  const void* reply_payload = nullptr;
  switch (req.op) {
    case SimOp::kHello: {
      const PhysInfo p = host_.physinfo();
      reply.values[0] = p.nr_cpus;
      reply.values[1] = p.max_cpu_id;
      reply.values[2] = static_cast<uint32_t>(p.cpu_khz);
      reply.values[3] = static_cast<uint32_t>(p.cpu_khz >> 32);
      break;
    }
    case SimOp::kTbufGetInfo: {
      const TbufInfo info = host_.tbuf_info();
      reply.values[0] = info.event_mask;
      reply.values[1] = info.t_info_first_page;
      reply.values[2] = info.t_info_bytes;
      break;
    }
    case SimOp::kTbufSetSize:
      reply.rc = host_.SetBufferPages(req.arg).ok() ? 0 : -EINVAL;
      break;
    case SimOp::kTbufEnable:
      reply.rc = host_.EnableTracing(/*pages=*/0).ok() ? 0 : -EINVAL;
      break;
    case SimOp::kTbufDisable:
      host_.DisableTracing();
      break;
    case SimOp::kTbufSetEvtMask:
      host_.SetEventMask(req.arg);
      break;
    case SimOp::kTbufSetCpuMask:
      host_.SetCpuMask(payload);
      break;
    case SimOp::kDomainList:
      for (const DomainInfo& d : host_.Domains()) {
        if (d.id < req.arg || domains.size() >= req.arg2) continue;
        SimDomainEntry e;
        e.domid = d.id;
        e.vcpus = d.vcpus;
        e.running_vcpus = d.running_vcpus;
        e.blocked = d.blocked ? 1 : 0;
        e.cpu_time_ns = d.cpu_time_ns;
        e.instance = d.instance;
        std::memcpy(e.name, d.name.data(), std::min<size_t>(d.name.size(), sizeof e.name - 1));
        domains.push_back(e);
      }
      reply.values[0] = static_cast<uint32_t>(domains.size());
      reply.payload_bytes = static_cast<uint32_t>(domains.size() * sizeof(SimDomainEntry));
      reply_payload = domains.data();
      break;
    case SimOp::kCpuOnlineMap: {
      const std::vector<uint32_t> online = host_.online_cpus();
      online_map.assign(host_.physinfo().max_cpu_id / 8 + 1, 0);
      for (uint32_t cpu : online) online_map[cpu / 8] |= static_cast<uint8_t>(1u << (cpu % 8));
      reply.values[0] = static_cast<uint32_t>(online.size());
      reply.payload_bytes = static_cast<uint32_t>(online_map.size());
      reply_payload = online_map.data();
      break;
    }
    case SimOp::kVcpuInfo: {
      uint64_t ns = 0;
      if (req.arg > 0xffff || !host_.VcpuCpuTime(static_cast<uint16_t>(req.arg), req.arg2, ns)) {
        reply.rc = -ESRCH;
        break;
      }
      reply.values[0] = static_cast<uint32_t>(ns);
      reply.values[1] = static_cast<uint32_t>(ns >> 32);
      break;
    }
    case SimOp::kBindVirq:
      if (bound_ != nullptr) {
        reply.rc = -EEXIST;
        break;
      }
      bound_ = &client;
      client.event_channel = true;
      reply.values[0] = kSimVirqPort;
      break;
    case SimOp::kUnmask:
      return false;  // only on an event channel
  }
  Reply(client.fd, reply, reply_payload);
  if (observer_) observer_(req.op);
  return true;
}

}  // namespace simulator
