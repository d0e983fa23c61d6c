#include "xenbaked/daemon.h"

int main(int argc, char** argv) {
  return xenbaked::Main(argc, argv);
}
