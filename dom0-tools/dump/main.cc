#include "dom0tools/dump.h"

int main(int argc, char** argv) {
  return dom0tools::DumpMain(argc, argv);
}
