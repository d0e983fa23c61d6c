#include "shim_connection.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "socket_io.h"

namespace simulator::shim {
namespace {

constexpr size_t kPage = 4096;

}  // namespace

bool Connection::Open() {
  const char* path = std::getenv("XENBAKE_SIM");
  if (path == nullptr || *path == '\0') {
    std::fprintf(stderr, "libxenbake-shim: XENBAKE_SIM is not set (the simulator's memory file)\n");
    errno = ENOENT;
    return false;
  }
  const std::string socket_path = SimSocketPath(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return false;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int saved = errno;
    std::fprintf(stderr, "libxenbake-shim: cannot reach xenbake-sim at %s: %s\n",
                 socket_path.c_str(), std::strerror(saved));
    Close();
    errno = saved;
    return false;
  }
  shm_fd_ = ::open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  SimReply reply;
  if (shm_fd_ < 0 || !Call(SimOp::kHello, 0, 0, {}, reply)) {
    const int saved = errno;
    Close();
    errno = saved;
    return false;
  }
  nr_cpus_ = reply.values[0];
  max_cpu_id_ = reply.values[1];
  cpu_khz_ = reply.values[2] | (uint64_t{reply.values[3]} << 32);
  return true;
}

void Connection::Close() {
  if (fd_ >= 0) ::close(fd_);
  if (shm_fd_ >= 0) ::close(shm_fd_);
  fd_ = shm_fd_ = -1;
}

bool Connection::Call(SimOp op, uint32_t arg, uint32_t arg2, std::span<const uint8_t> payload,
                      SimReply& reply, std::span<std::byte> out) {
  SimRequest req;
  req.op = op;
  req.arg = arg;
  req.arg2 = arg2;
  req.payload_bytes = static_cast<uint32_t>(payload.size());
  if (!SendAll(fd_, &req, sizeof req)) return false;
  if (!payload.empty() && !SendAll(fd_, payload.data(), payload.size())) return false;
  if (!RecvAll(fd_, &reply, sizeof reply)) return false;
  size_t left = reply.payload_bytes;
  const size_t take = std::min(left, out.size());
  if (take > 0 && !RecvAll(fd_, out.data(), take)) return false;
  left -= take;
  char sink[256];
  while (left > 0) {  // more than the caller wanted: read and drop the rest
    const size_t n = std::min(left, sizeof sink);
    if (!RecvAll(fd_, sink, n)) return false;
    left -= n;
  }
  return true;
}

bool Connection::Send(SimOp op, uint32_t arg) {
  SimRequest req;
  req.op = op;
  req.arg = arg;
  return SendAll(fd_, &req, sizeof req);
}

void* Connection::MapFrames(const uint64_t* frames, size_t count, int prot, int* errs) {
  struct stat st;
  if (count == 0 || ::fstat(shm_fd_, &st) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  const uint64_t file_pages = static_cast<uint64_t>(st.st_size) / kPage;
  // Reserve the whole range, then put each run of consecutive frames in place.
  void* base = ::mmap(nullptr, count * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  auto* at = static_cast<char*>(base);
  bool failed = false;
  for (size_t i = 0; i < count;) {
    size_t run = 1;
    while (i + run < count && frames[i + run] == frames[i] + run) ++run;
    const bool in_file = frames[i] + run <= file_pages;
    void* p = in_file ? ::mmap(at + i * kPage, run * kPage, prot, MAP_SHARED | MAP_FIXED, shm_fd_,
                               static_cast<off_t>(frames[i] * kPage))
                      : MAP_FAILED;
    for (size_t k = 0; k < run; ++k)
      if (errs != nullptr) errs[i + k] = p == MAP_FAILED ? -EINVAL : 0;
    failed = failed || p == MAP_FAILED;
    i += run;
  }
  if (failed && errs == nullptr) {
    ::munmap(base, count * kPage);
    errno = EINVAL;
    return nullptr;
  }
  return base;
}

}  // namespace simulator::shim
