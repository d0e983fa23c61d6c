#include "report/report_main.h"

int main(int argc, char** argv) {
  return xenbake::report::ReportMain(argc, argv);
}
