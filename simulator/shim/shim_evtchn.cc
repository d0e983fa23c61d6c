// libxenevtchn's subset for VIRQ_TBUF, backed by a running xenbake-sim: the handle's fd becomes
// readable when the simulator raises the VIRQ.
#include <unistd.h>

#include <cerrno>
#include <new>

#include "shim_connection.h"

extern "C" {
#include <xenctrl.h>
#include <xenevtchn.h>
}

using simulator::SimOp;
using simulator::SimReply;
using simulator::shim::Connection;

struct xenevtchn_handle {
  Connection conn;
  bool bound = false;
};

extern "C" {

xenevtchn_handle* xenevtchn_open(xentoollog_logger* /*logger*/, unsigned /*open_flags*/) {
  return simulator::shim::OpenHandle<xenevtchn_handle>();
}

int xenevtchn_close(xenevtchn_handle* xce) {
  return simulator::shim::CloseHandle(xce);
}

int xenevtchn_fd(xenevtchn_handle* xce) {
  return xce->conn.fd();
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle* xce, unsigned int virq) {
  if (virq != VIRQ_TBUF || xce->bound) {  // the simulator has only the trace-buffer VIRQ
    errno = xce->bound ? EEXIST : EINVAL;
    return -1;
  }
  SimReply reply;
  if (!xce->conn.Call(SimOp::kBindVirq, virq, 0, {}, reply)) return -1;
  if (reply.rc < 0) {
    errno = -reply.rc;
    return -1;
  }
  xce->bound = true;
  return static_cast<xenevtchn_port_or_error_t>(reply.values[0]);
}

int xenevtchn_unbind(xenevtchn_handle* xce, evtchn_port_t port) {
  if (!xce->bound || port != simulator::kSimVirqPort) {
    errno = EINVAL;
    return -1;
  }
  // The connection is an event channel for good: a fresh one releases the binding.
  xce->conn.Close();
  xce->bound = false;
  return xce->conn.Open() ? 0 : -1;
}

// Blocks until an event arrives, as reading /dev/xen/evtchn does.
xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle* xce) {
  char event = 0;
  for (;;) {
    const ssize_t n = ::read(xce->conn.fd(), &event, 1);
    if (n == 1) return static_cast<xenevtchn_port_or_error_t>(simulator::kSimVirqPort);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = ECONNRESET;
    return -1;
  }
}

int xenevtchn_unmask(xenevtchn_handle* xce, evtchn_port_t port) {
  if (!xce->bound || port != simulator::kSimVirqPort) {
    errno = EINVAL;
    return -1;
  }
  return xce->conn.Send(SimOp::kUnmask, port) ? 0 : -1;
}

}  // extern "C"
