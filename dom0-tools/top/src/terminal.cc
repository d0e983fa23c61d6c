#include "terminal.h"

#include <curses.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "names/domain_name.h"

namespace xenbake::top {
namespace {
constexpr short kWarningPair = 1;
constexpr short kHeaderPair = 2;
}  // namespace

Terminal::Terminal() {
  initscr();
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  // NO_COLOR (no-color.org): a person who asked for no colour gets none.
  if (has_colors() && std::getenv("NO_COLOR") == nullptr) {
    colour_ = true;
    start_color();
    use_default_colors();
    init_pair(kWarningPair, COLOR_WHITE, COLOR_RED);
    init_pair(kHeaderPair, COLOR_BLACK, COLOR_CYAN);
  }
}

Terminal::~Terminal() {
  endwin();
}

int Terminal::WaitForKey(int timeout_ms) {
  timeout(std::max(timeout_ms, 0));
  return getch();
}

void Terminal::Put(int row, const std::string& text, int attributes) {
  if (row < 0 || row >= LINES) return;
  // Text is ASCII apart from sanitised names; cut by display columns, never inside a character.
  const std::string line = FitToWidth(text, static_cast<size_t>(std::max(COLS, 0)));
  attron(attributes);
  mvaddstr(row, 0, line.c_str());
  if (attributes & A_REVERSE) {
    for (int x = static_cast<int>(DisplayWidth(line)); x < COLS; ++x) addch(' ');
  }
  attroff(attributes);
}

void Terminal::Draw(const TopModel& model, const UiState& ui, const std::string& source) {
  erase();
  const int header_attr = colour_ ? COLOR_PAIR(kHeaderPair) : A_REVERSE;
  const int warning_attr = A_BOLD | (colour_ ? COLOR_PAIR(kWarningPair) : A_REVERSE);
  int row = 0;
  Put(row++, TitleLine(ui, source), A_REVERSE);
  if (!model.warning.empty()) Put(row++, "WARNING: " + model.warning, warning_attr);
  Put(row++, FormatHealthLine(model.health), A_NORMAL);
  ++row;

  // The CPU panel takes the bottom: one CPU when focused, else up to a third of the screen.
  const int cpu_rows = ui.cpu_focus >= 0 ? 1
                                         : std::min<int>(static_cast<int>(model.cpus.size()),
                                                         std::max(2, LINES / 3));
  const int cpu_top = std::max(row + 2, LINES - cpu_rows - 2);

  Put(row++, FormatDomainHeader(), header_attr | A_BOLD);
  const int domain_rows = std::max(0, cpu_top - row - 1);
  for (int i = 0; i < domain_rows && i < static_cast<int>(model.domains.size()); ++i) {
    Put(row++, FormatDomainRow(model.domains[static_cast<size_t>(i)]), A_NORMAL);
  }
  if (static_cast<int>(model.domains.size()) > domain_rows) {
    Put(row, fmt::format("  ... {} more domains", model.domains.size() - domain_rows), A_DIM);
  }

  const std::string panel =
      ui.cpu_focus >= 0 && static_cast<size_t>(ui.cpu_focus) < model.cpus.size()
          ? fmt::format("physical CPU {} (c: next)", model.cpus[ui.cpu_focus].cpu)
          : fmt::format("physical CPUs: all {} (c: one at a time)", model.cpus.size());
  Put(cpu_top, panel, A_BOLD);
  Put(cpu_top + 1, FormatCpuHeader(), header_attr | A_BOLD);
  if (ui.cpu_focus >= 0 && static_cast<size_t>(ui.cpu_focus) < model.cpus.size()) {
    Put(cpu_top + 2, FormatCpuRow(model.cpus[ui.cpu_focus]), A_NORMAL);
  } else {
    for (int i = 0; i < cpu_rows; ++i) {
      Put(cpu_top + 2 + i, FormatCpuRow(model.cpus[static_cast<size_t>(i)]), A_NORMAL);
    }
  }
  refresh();
}

}  // namespace xenbake::top
