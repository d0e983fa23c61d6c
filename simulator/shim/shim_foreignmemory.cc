// libxenforeignmemory's map/unmap of DOMID_XEN frames, backed by xenbake-sim's memory file.
#include <sys/mman.h>

#include <cerrno>
#include <new>
#include <vector>

#include "shim_connection.h"

extern "C" {
#include <xenctrl.h>
#include <xenforeignmemory.h>
}

using simulator::shim::Connection;

struct xenforeignmemory_handle {
  Connection conn;
};

extern "C" {

xenforeignmemory_handle* xenforeignmemory_open(xentoollog_logger* /*logger*/,
                                               unsigned /*open_flags*/) {
  return simulator::shim::OpenHandle<xenforeignmemory_handle>();
}

int xenforeignmemory_close(xenforeignmemory_handle* fmem) {
  return simulator::shim::CloseHandle(fmem);
}

void* xenforeignmemory_map(xenforeignmemory_handle* fmem, uint32_t dom, int prot, size_t pages,
                           const xen_pfn_t arr[/*pages*/], int err[/*pages*/]) {
  if (dom != DOMID_XEN) {
    errno = EPERM;
    return nullptr;
  }
  std::vector<uint64_t> frames(arr, arr + pages);
  return fmem->conn.MapFrames(frames.data(), pages, prot, err);
}

int xenforeignmemory_unmap(xenforeignmemory_handle* /*fmem*/, void* addr, size_t pages) {
  return ::munmap(addr, pages * 4096);
}

}  // extern "C"
