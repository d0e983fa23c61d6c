// top/top_ui.h — xenbake-top's interactive state and keys, apart from the terminal so the key
// handling is tested without one.
//
//   q      quit                      c      cycle the CPU panel: all CPUs, cpu0, cpu1, ...
//   s      next sort column          r      reverse the sort
//   P W B D I N  sort by CPU%, wait%, blocked%, dispatches/s, id, name
//   t      sort on the 10 s window instead of the 1 s one (and back)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "top/top_model.h"

namespace xenbake::top {

struct UiState {
  SortKey sort = SortKey::kCpu;
  bool descending = true;
  size_t sort_window = 0;  // 0: 1 s, 1: 10 s
  int cpu_focus = -1;      // -1: all CPUs; otherwise an index into the model's CPU rows
  bool quit = false;
};

// Applies one key (a character, or ncurses' KEY_* codes, passed as int). `cpu_count`: CPUs in the
// model, for cycling. Returns whether anything changed.
bool HandleKey(UiState& ui, int key, size_t cpu_count);

// The title line: what is shown, how it is sorted, the keys.
std::string TitleLine(const UiState& ui, const std::string& source);

}  // namespace xenbake::top
