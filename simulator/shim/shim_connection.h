// The shim's link to a running xenbake-sim: the control socket and the trace-memory file.
// No Xen header here: the Xen-facing translation units include this.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string>

#include "simulator/sim_protocol.h"

namespace simulator::shim {

// One connection per handle the shim returns (xc_interface, xenevtchn_handle, ...).
class Connection {
 public:
  // Reads XENBAKE_SIM, connects, and says hello. Sets errno and returns false on failure.
  bool Open();
  void Close();
  // Sends a request and reads the reply (and up to `out.size()` payload bytes). Returns false on
  // a broken connection (errno set); a refusal by the simulator is reply.rc < 0.
  bool Call(SimOp op, uint32_t arg, uint32_t arg2, std::span<const uint8_t> payload,
            SimReply& reply, std::span<std::byte> out = {});
  // One-way message (kUnmask).
  bool Send(SimOp op, uint32_t arg);
  // Maps `count` pages of the trace memory starting at each of `frames` into one contiguous
  // range; null (errno set) when a frame is outside the file. `errs` may be null.
  void* MapFrames(const uint64_t* frames, size_t count, int prot, int* errs);

  int fd() const { return fd_; }
  uint32_t nr_cpus() const { return nr_cpus_; }
  uint32_t max_cpu_id() const { return max_cpu_id_; }
  uint64_t cpu_khz() const { return cpu_khz_; }

 private:
  int fd_ = -1;
  int shm_fd_ = -1;
  uint32_t nr_cpus_ = 0;
  uint32_t max_cpu_id_ = 0;
  uint64_t cpu_khz_ = 0;
};

// Every libxen handle the shim returns is a struct holding a Connection named `conn`.
template <typename Handle>
Handle* OpenHandle() {
  auto* handle = new (std::nothrow) Handle;
  if (handle == nullptr) return nullptr;
  if (!handle->conn.Open()) {
    const int saved = errno;
    delete handle;
    errno = saved;
    return nullptr;
  }
  return handle;
}

template <typename Handle>
int CloseHandle(Handle* handle) {
  if (handle == nullptr) return 0;
  handle->conn.Close();
  delete handle;
  return 0;
}

}  // namespace simulator::shim
