// report/report_format.h — a Report as a table, CSV, JSON or an SVG plot.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "report/report_model.h"

namespace xenbake::report {

std::string FormatTable(const Report& report);
// One row per domain incarnation; numbers unformatted (seconds with nine decimals).
std::string FormatCsv(const Report& report);
nlohmann::json ReportJson(const Report& report);

struct PlotOptions {
  size_t max_domains = 8;   // the busiest by CPU; the rest are named in a note
  size_t max_points = 600;  // windows are averaged into at most this many points per line
  double width = 1100;
};

// CPU %, wait % and blocked % over time, one panel each, one line per domain.
std::string RenderSvgPlot(const Report& report, const PlotOptions& options = {});

}  // namespace xenbake::report
