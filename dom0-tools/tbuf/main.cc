#include "tbuf/tbuf_main.h"

int main(int argc, char** argv) {
  return xenbake::tbuf::TbufMain(argc, argv);
}
