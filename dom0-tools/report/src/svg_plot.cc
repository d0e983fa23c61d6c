#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "names/domain_name.h"
#include "report/report_format.h"
#include "report/svg_writer.h"

namespace xenbake::report {
namespace {

constexpr uint32_t kIdleDomain = 32767;
constexpr double kLeft = 70;
constexpr double kLegendWidth = 230;
constexpr double kTop = 60;
constexpr double kPanelHeight = 190;
constexpr double kPanelGap = 50;
constexpr size_t kPanels = 3;
constexpr size_t kXTicks = 6;
constexpr int kYDivisions = 5;  // every axis maximum below divides into round steps
constexpr std::array<std::string_view, 10> kPalette = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                       "#9467bd", "#8c564b", "#e377c2", "#17becf",
                                                       "#7f7f7f", "#bcbd22"};

struct Panel {
  std::string_view title;
  uint64_t SeriesPoint::*field;
};
constexpr std::array<Panel, kPanels> kPanelsShown = {{
    {"CPU % (running; 100 = one physical CPU)", &SeriesPoint::running_ns},
    {"Wait % (runnable, waiting for a CPU)", &SeriesPoint::runnable_ns},
    {"Blocked % (asleep)", &SeriesPoint::blocked_ns},
}};

// Per plotted domain and bucket: the summed figure and window time, for an average percentage.
struct Bucket {
  std::array<uint64_t, kPanels> sum{};
  uint64_t window_ns = 0;
  size_t run = 0;  // of the newest point in it
};

// Buckets by wall-clock time, so that time without a daemon between runs shows as empty buckets
// (a break in the lines) instead of being drawn over: one per two of the shortest windows over
// the span (two, so that a publication late by part of a window leaves no bucket empty), within
// the limit.
size_t BucketCount(const Report& r, uint64_t span, size_t max_points) {
  uint64_t shortest = 0;
  for (const SeriesPoint& p : r.series) {
    if (p.window_ns != 0 && (shortest == 0 || p.window_ns < shortest)) shortest = p.window_ns;
  }
  const uint64_t wanted = shortest == 0 ? 1 : span / (2 * shortest) + 1;
  return std::max<size_t>(1, static_cast<size_t>(std::min<uint64_t>(max_points, wanted)));
}

// The busiest domains by CPU, idle excluded (it would flatten every other line).
std::vector<size_t> ChooseDomains(const Report& r, size_t max_domains, size_t& left_out) {
  std::vector<size_t> chosen;
  for (size_t i = 0; i < r.domains.size(); ++i) {
    if (r.domains[i].domid != kIdleDomain && r.domains[i].intervals != 0) chosen.push_back(i);
  }
  std::stable_sort(chosen.begin(), chosen.end(), [&](size_t a, size_t b) {
    return r.domains[a].totals.running_ns > r.domains[b].totals.running_ns;
  });
  left_out = chosen.size() > max_domains ? chosen.size() - max_domains : 0;
  if (left_out != 0) chosen.resize(max_domains);
  return chosen;
}

// A round upper bound for a percentage axis: 10, 25, 50, 100, then multiples of 100.
double AxisMax(double value) {
  for (double step : {10.0, 25.0, 50.0, 100.0}) {
    if (value <= step) return step;
  }
  return std::ceil(value / 100.0) * 100.0;
}

std::string TimeLabel(uint64_t unix_ns, bool with_date) {
  const std::string full = FormatUnixTime(unix_ns);
  return with_date ? full : full.substr(11);
}

}  // namespace

std::string RenderSvgPlot(const Report& r, const PlotOptions& o) {
  const double plot_width = o.width - kLeft - kLegendWidth;
  const double height = kTop + kPanels * (kPanelHeight + kPanelGap) + 20;
  SvgWriter svg(o.width, height);
  svg.Rect(0, 0, o.width, height, "#ffffff");
  svg.Text(o.width / 2, 28,
           fmt::format("xenbake-report: host {}, {} .. {} UTC", r.host.empty() ? "?" : r.host,
                       r.windows ? FormatUnixTime(r.first_unix_ns) : "-",
                       r.windows ? FormatUnixTime(r.last_unix_ns) : "-"),
           TextStyle::Sized(16).Middle().Bold());

  size_t left_out = 0;
  const std::vector<size_t> domains = ChooseDomains(r, o.max_domains, left_out);
  const uint64_t t0 = r.first_unix_ns;
  const uint64_t span = std::max<uint64_t>(r.last_unix_ns - std::min(t0, r.last_unix_ns), 1);
  const size_t buckets = BucketCount(r, span, o.max_points);
  std::vector<std::vector<Bucket>> grid(domains.size(), std::vector<Bucket>(buckets));
  std::vector<std::optional<size_t>> slot(r.domains.size());
  for (size_t i = 0; i < domains.size(); ++i) slot[domains[i]] = i;
  for (const SeriesPoint& p : r.series) {
    if (!slot[p.domain]) continue;
    const uint64_t at = std::min(std::max(p.realtime_end_ns, t0) - t0, span);
    const size_t b = std::min(
        buckets - 1, static_cast<size_t>(static_cast<double>(at) / static_cast<double>(span) *
                                             static_cast<double>(buckets - 1) +
                                         0.5));
    Bucket& bucket = grid[*slot[p.domain]][b];
    for (size_t k = 0; k < kPanels; ++k) bucket.sum[k] += p.*(kPanelsShown[k].field);
    bucket.window_ns += p.window_ns;
    bucket.run = p.run;
  }
  const auto x_of = [&](size_t b) {
    return kLeft + (buckets == 1
                        ? plot_width / 2
                        : plot_width * static_cast<double>(b) / static_cast<double>(buckets - 1));
  };
  const bool with_date = span > 86'400'000'000'000u;

  for (size_t k = 0; k < kPanels; ++k) {
    const double top = kTop + static_cast<double>(k) * (kPanelHeight + kPanelGap);
    double peak = 0;
    for (const auto& row : grid) {
      for (const Bucket& b : row) {
        if (b.window_ns) peak = std::max(peak, Percent(b.sum[k], b.window_ns));
      }
    }
    const double y_max = AxisMax(peak);
    const auto y_of = [&](double pct) { return top + kPanelHeight * (1.0 - pct / y_max); };
    svg.Text(kLeft, top - 8, kPanelsShown[k].title, TextStyle::Sized(13).Bold());
    svg.Rect(kLeft, top, plot_width, kPanelHeight, "#fafafa", "#999999");
    for (int g = 0; g <= kYDivisions; ++g) {
      const double pct = y_max * g / kYDivisions;
      svg.Line(kLeft, y_of(pct), kLeft + plot_width, y_of(pct), "#dddddd", 1,
               g != 0 && g != kYDivisions);
      svg.Text(kLeft - 6, y_of(pct) + 4, fmt::format("{:g}", pct), TextStyle::Sized(11).End());
    }
    for (size_t t = 0; t <= kXTicks; ++t) {
      const double x = kLeft + plot_width * static_cast<double>(t) / kXTicks;
      svg.Line(x, top + kPanelHeight, x, top + kPanelHeight + 4, "#999999");
      const uint64_t at = t0 + static_cast<uint64_t>(static_cast<double>(span) * t / kXTicks);
      svg.Text(x, top + kPanelHeight + 16, TimeLabel(at, with_date), TextStyle::Sized(10).Middle());
    }
    for (size_t d = 0; d < grid.size(); ++d) {
      // A gap in a domain's data (not alive, daemon not running) breaks its line, and so does
      // a restart of the daemon: two runs are never joined.
      std::vector<std::pair<double, double>> run;
      std::optional<size_t> daemon_run;
      const auto draw = [&] {
        // A lone point gets a pixel of length so that it shows.
        if (run.size() == 1) run.emplace_back(run.front().first + 1, run.front().second);
        svg.Polyline(run, kPalette[d % kPalette.size()]);
        run.clear();
      };
      for (size_t b = 0; b < buckets; ++b) {
        const Bucket& bucket = grid[d][b];
        if (bucket.window_ns == 0 || (daemon_run && *daemon_run != bucket.run)) {
          draw();
          daemon_run.reset();
          if (bucket.window_ns == 0) continue;
        }
        daemon_run = bucket.run;
        run.emplace_back(x_of(b), y_of(Percent(bucket.sum[k], bucket.window_ns)));
      }
      draw();
    }
  }

  // Legend: every plotted domain by id and sanitised name.
  const double legend_x = kLeft + plot_width + 20;
  svg.Text(legend_x, kTop + 4, "domains (busiest first)", TextStyle::Sized(12).Bold());
  for (size_t d = 0; d < domains.size(); ++d) {
    const double y = kTop + 24 + 20 * static_cast<double>(d);
    const DomainTotalsRow& row = r.domains[domains[d]];
    svg.Line(legend_x, y - 4, legend_x + 22, y - 4, kPalette[d % kPalette.size()], 3);
    svg.Text(legend_x + 28, y, FitToWidth(DomainLabel(row.domid, row.name), 26),
             TextStyle::Sized(11));
  }
  const double note_y = kTop + 34 + 20 * static_cast<double>(domains.size());
  if (left_out != 0) {
    svg.Text(legend_x, note_y, fmt::format("{} quieter domains not drawn", left_out),
             TextStyle::Sized(10).Coloured("#666666"));
  }
  svg.Text(legend_x, note_y + 16, "idle domain not drawn",
           TextStyle::Sized(10).Coloured("#666666"));
  if (domains.empty()) {
    svg.Text(kLeft + plot_width / 2, kTop + kPanelHeight / 2, "no interval records in the period",
             TextStyle::Sized(14).Middle().Coloured("#aa0000"));
  }
  return svg.Finish();
}

}  // namespace xenbake::report
