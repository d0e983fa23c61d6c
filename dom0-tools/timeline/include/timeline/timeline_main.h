// timeline/timeline_main.h — the xenbake-timeline command (main.cc calls only this).
//
//   xenbake-timeline --cpu-khz 2596120 -o trace.json trace.bin
//
// Exit status: 0 converted; 1 bad usage, unreadable input or unwritable output; 2 the input was
// damaged (the timeline holds everything before the damage and the message says where).
#pragma once

namespace xenbake::timeline {

int TimelineMain(int argc, char** argv);

}  // namespace xenbake::timeline
