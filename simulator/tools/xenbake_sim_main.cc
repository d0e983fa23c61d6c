#include "simulator/sim_main.h"

int main(int argc, char** argv) {
  return simulator::SimMain(argc, argv);
}
