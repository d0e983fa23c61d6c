// report/report_main.h — the xenbake-report command (main.cc calls only ReportMain).
//
//   xenbake-report --from 2024-05-01T12:00:00Z --svg cpu.svg /var/log/xenbaked/accounting.log
//
// Exit status: 0 reported; 1 bad usage or a log that cannot be read at all; 2 a log damaged
// part-way (everything before the damage is reported, the message gives the byte offset).
#pragma once

namespace xenbake::report {

int ReportMain(int argc, char** argv);

}  // namespace xenbake::report
