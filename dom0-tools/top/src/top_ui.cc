#include "top/top_ui.h"

#include <fmt/format.h>

#include <algorithm>

namespace xenbake::top {

bool HandleKey(UiState& ui, int key, size_t cpu_count) {
  const auto sort_by = [&](SortKey k) {
    // Ids and names read naturally ascending; figures, largest first.
    ui.descending = !(k == SortKey::kId || k == SortKey::kName);
    ui.sort = k;
    return true;
  };
  switch (key) {
    case 'q':
    case 'Q':
      ui.quit = true;
      return true;
    case 'c':
      ui.cpu_focus = ui.cpu_focus + 1 >= static_cast<int>(cpu_count) ? -1 : ui.cpu_focus + 1;
      return true;
    case 's': {
      const auto it = std::find(kSortKeys.begin(), kSortKeys.end(), ui.sort);
      const size_t next = (static_cast<size_t>(it - kSortKeys.begin()) + 1) % kSortKeys.size();
      return sort_by(kSortKeys[next]);
    }
    case 'r':
      ui.descending = !ui.descending;
      return true;
    case 't':
      ui.sort_window = 1 - ui.sort_window;
      return true;
    case 'P':
      return sort_by(SortKey::kCpu);
    case 'W':
      return sort_by(SortKey::kWait);
    case 'B':
      return sort_by(SortKey::kBlocked);
    case 'D':
      return sort_by(SortKey::kDispatches);
    case 'I':
      return sort_by(SortKey::kId);
    case 'N':
      return sort_by(SortKey::kName);
    default:
      return false;
  }
}

std::string TitleLine(const UiState& ui, const std::string& source) {
  return fmt::format("xenbake-top  {}  sort: {} {} ({})  keys: q quit, c CPUs, s/r sort, t window",
                     source, SortKeyName(ui.sort), ui.descending ? "desc" : "asc",
                     ui.sort_window == 0 ? "1s" : "10s");
}

}  // namespace xenbake::top
