// xenbaked/options_exit.h — thrown by ParseOptions when the program should exit right away
// (--help, --version, a bad option): the message is already printed, `code` is the exit code.
#pragma once

namespace xenbaked {
struct OptionsExit {
  int code = 0;
};
}  // namespace xenbaked
