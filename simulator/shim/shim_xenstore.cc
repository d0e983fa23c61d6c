// libxenstore's read of domain names (/local/domain/<id>/name), answered from the simulator's
// domain list: enough for a consumer that names domains the way xentop and xenbaked do.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shim_connection.h"

extern "C" {
#include <xenstore.h>
}

using simulator::SimDomainEntry;
using simulator::SimOp;
using simulator::SimReply;

struct xs_handle {
  simulator::shim::Connection conn;
};

namespace {

// "/local/domain/<id>/name" → id; anything else is not a path the simulator has.
bool ParseNamePath(const char* path, uint32_t& id) {
  constexpr char kPrefix[] = "/local/domain/";
  if (std::strncmp(path, kPrefix, sizeof kPrefix - 1) != 0) return false;
  char* end = nullptr;
  const unsigned long value = std::strtoul(path + sizeof kPrefix - 1, &end, 10);
  if (end == path + sizeof kPrefix - 1 || std::strcmp(end, "/name") != 0 || value > 0x7fff)
    return false;
  id = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

extern "C" {

struct xs_handle* xs_open(unsigned long /*flags*/) {
  return simulator::shim::OpenHandle<xs_handle>();
}

void xs_close(struct xs_handle* xsh) {
  simulator::shim::CloseHandle(xsh);
}

void* xs_read(struct xs_handle* h, xs_transaction_t /*t*/, const char* path, unsigned int* len) {
  uint32_t id = 0;
  if (!ParseNamePath(path, id)) {
    errno = ENOENT;
    return nullptr;
  }
  SimDomainEntry entry;
  SimReply reply;
  if (!h->conn.Call(SimOp::kDomainList, id, 1, {}, reply,
                    std::as_writable_bytes(std::span(&entry, 1))))
    return nullptr;
  if (reply.values[0] == 0 || entry.domid != id) {
    errno = ENOENT;
    return nullptr;
  }
  const size_t n = strnlen(entry.name, sizeof entry.name);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, entry.name, n);
  out[n] = '\0';
  if (len != nullptr) *len = static_cast<unsigned int>(n);
  return out;
}

}  // extern "C"
