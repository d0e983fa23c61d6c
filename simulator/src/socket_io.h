// Whole-buffer send and receive on a stream socket, shared by the server and the shim.
#pragma once

#include <cstddef>

namespace simulator {

// Each moves exactly `len` bytes or returns false (errno set; ECONNRESET when the peer closed).
// Interrupted calls are retried; SIGPIPE is never raised.
bool RecvAll(int fd, void* buf, size_t len);
bool SendAll(int fd, const void* buf, size_t len);

}  // namespace simulator
