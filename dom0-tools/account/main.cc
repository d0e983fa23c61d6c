#include "dom0tools/account.h"

int main(int argc, char** argv) {
  return dom0tools::AccountMain(argc, argv);
}
