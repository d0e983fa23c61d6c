// tbuf/tbuf_main.h — the xenbake-tbuf command (main.cc calls only TbufMain).
//
//   xenbake-tbuf show
//   xenbake-tbuf enable --size 64 --mask sched --cpus 0-3
//
// RunTbuf does the work on any TraceBufferControl, so tests drive it with a fake.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "tbuf/trace_buffer_control.h"

namespace xenbake::tbuf {

struct TbufRequest {
  enum class Verb { kShow, kSet, kEnable, kDisable };
  Verb verb = Verb::kShow;
  bool json = false;                      // show: JSON instead of text
  std::optional<std::string> pages_text;  // --size
  std::optional<std::string> mask_text;   // --mask: class names or a number
  std::optional<std::string> cpus_text;   // --cpus: "0-3,6", "all", "0x0f"
};

// Exit status: 0 done; 1 refused or failed (the message says why); 2 bad arguments.
int RunTbuf(const TbufRequest& request, TraceBufferControl& control, std::FILE* out,
            std::FILE* err);

int TbufMain(int argc, char** argv);

}  // namespace xenbake::tbuf
