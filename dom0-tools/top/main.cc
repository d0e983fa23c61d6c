#include "top/top_main.h"

int main(int argc, char** argv) {
  return xenbake::top::TopMain(argc, argv);
}
