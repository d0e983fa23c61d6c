// top/top_main.h — the xenbake-top command (main.cc calls only TopMain).
//
//   xenbake-top                        live view of /dev/shm/xenbaked
//   xenbake-top --batch --iterations 5 one JSON object per interval, for scripts
//
// Exit status: 0 quit or iterations done; 1 no daemon, stale or stopped daemon, version mismatch
// or a damaged snapshot (the message says which); 2 bad arguments.
#pragma once

namespace xenbake::top {

int TopMain(int argc, char** argv);

}  // namespace xenbake::top
