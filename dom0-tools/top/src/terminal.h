// The ncurses screen of xenbake-top: set up on construction, restored on destruction (also when
// an exception unwinds), so the terminal is never left raw.
#pragma once

#include <string>

#include "top/top_model.h"
#include "top/top_ui.h"

namespace xenbake::top {

class Terminal {
 public:
  Terminal();
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // A key, KEY_RESIZE, or -1 when `timeout_ms` passed without one.
  int WaitForKey(int timeout_ms);
  void Draw(const TopModel& model, const UiState& ui, const std::string& source);

 private:
  void Put(int row, const std::string& text, int attributes);
  bool colour_ = false;
};

}  // namespace xenbake::top
