#include "timeline/timeline_main.h"

int main(int argc, char** argv) {
  return xenbake::timeline::TimelineMain(argc, argv);
}
