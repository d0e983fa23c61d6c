#include "socket_io.h"

#include <sys/socket.h>

#include <cerrno>

namespace simulator {
namespace {

template <typename Transfer>
bool TransferAll(size_t len, Transfer transfer) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = transfer(done, len - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      errno = ECONNRESET;
      return false;
    } else if (errno != EINTR) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool RecvAll(int fd, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  return TransferAll(len,
                     [&](size_t off, size_t n) { return ::recv(fd, p + off, n, MSG_WAITALL); });
}

bool SendAll(int fd, const void* buf, size_t len) {
  const auto* p = static_cast<const char*>(buf);
  return TransferAll(len,
                     [&](size_t off, size_t n) { return ::send(fd, p + off, n, MSG_NOSIGNAL); });
}

}  // namespace simulator
