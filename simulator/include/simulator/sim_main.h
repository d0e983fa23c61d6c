// simulator/sim_main.h — the xenbake-sim program (its main.cc only calls SimMain).
//
//   xenbake-sim run --shm /dev/shm/xenbake-sim --cpus 4 --domains 8 --duration 10
//       runs a workload in real time into shared memory for the libxen shim, prints the truth
//   xenbake-sim run --replay capture.bin --speed 2 ...
//       replays a real capture into the rings instead
//   xenbake-sim check --capture out.bin --reference produced.bin --truth truth.json
//       exit 0 when a consumer's capture holds exactly what the simulator produced
//   xenbake-sim overflow-study --svg overflow.svg
//       sweeps buffer size × record rate × consumer latency; prints a table
#pragma once

namespace simulator {

int SimMain(int argc, char** argv);

}  // namespace simulator
