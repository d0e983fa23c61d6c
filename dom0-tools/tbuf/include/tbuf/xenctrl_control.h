// tbuf/xenctrl_control.h — TraceBufferControl on libxenctrl (and libxenforeignmemory, to read
// which CPUs have buffers from the t_info area).
#pragma once

#include <memory>

#include "tbuf/trace_buffer_control.h"

namespace xenbake::tbuf {

// Whether this process can reach a hypervisor: /dev/xen/privcmd (or /proc/xen/privcmd) exists,
// or the simulator's libxen shim is loaded.
bool XenReachable();

// Opens libxenctrl. An error a person can act on when not on Xen or not root.
tracefmt::Result<std::unique_ptr<TraceBufferControl>> OpenXenctrlTraceBufferControl();

}  // namespace xenbake::tbuf
