#include "simulator/overflow_study.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "simulator/producer.h"
#include "simulator/trace_memory.h"
#include "tracefmt/events.h"
#include "tracefmt/ring.h"

namespace simulator {
namespace {

constexpr uint32_t kSizesWords[] = {0, 1, 2, 3, 4};  // + header and TSC: 12, 16, 20, 24, 28 bytes

// The consumer: woken `latency_ns` after a notification, it drains the whole buffer.
class LatentConsumer final : public HighWaterListener {
 public:
  explicit LatentConsumer(uint64_t latency_ns) : latency_ns_(latency_ns) {}
  void OnHighWater(uint32_t) override {
    if (!wake_pending_) wake_at_ = now_ + latency_ns_;
    wake_pending_ = true;  // the event channel stays masked until it is handled
  }
  // Runs the consumer if it is due at or before `t`.
  void RunUntil(uint64_t t, TraceMemory& memory, uint64_t& lost_reported) {
    now_ = t;
    if (!wake_pending_ || wake_at_ > t) return;
    wake_pending_ = false;
    const uint32_t prod = memory.LoadProd(0);
    const auto d = tracefmt::DrainRing(
        memory.CpuData(0), memory.LoadCons(0), prod, ~0u, [](std::span<const std::byte>) {},
        [&](const tracefmt::Record& r) {
          if (auto l = tracefmt::AsLostRecords(r)) lost_reported += l->count;
        });
    memory.StoreCons(0, d.new_cons);
  }

 private:
  uint64_t latency_ns_;
  uint64_t now_ = 0;
  uint64_t wake_at_ = 0;
  bool wake_pending_ = false;
};

double BoundNs(uint32_t pages, double rate_hz) {
  return (tracefmt::RingDataSize(pages) / 2.0) / (rate_hz * kStudyMeanRecordBytes) * 1e9;
}

}  // namespace

double OverflowPoint::predicted_loss() const {
  const double l = static_cast<double>(latency_ns);
  return l <= bound_ns ? 0.0 : (l - bound_ns) / (l + bound_ns);
}

bool OverflowPoint::agrees() const {
  return (dropped == 0) == (static_cast<double>(latency_ns) < bound_ns);
}

OverflowPoint RunOverflowPoint(uint32_t pages, double rate_hz, uint64_t latency_ns,
                               uint32_t cycles) {
  OverflowPoint p;
  p.pages = pages;
  p.rate_hz = rate_hz;
  p.latency_ns = latency_ns;
  p.bound_ns = BoundNs(pages, rate_hz);
  auto memory = TraceMemory::Create({{0}, 0, kDefaultNrCpusLimit, ""});
  if (!memory) return p;
  LatentConsumer consumer(latency_ns);
  TraceProducer producer(*memory, &consumer);
  if (!producer.SetSize(pages)) return p;
  const double duration_ns = cycles * (p.bound_ns + static_cast<double>(latency_ns));
  const double interval_ns = 1e9 / rate_hz;
  const uint32_t words[4] = {1, 2, 3, 4};
  for (uint64_t i = 0;; ++i) {
    const auto t = static_cast<uint64_t>(static_cast<double>(i) * interval_ns);
    if (static_cast<double>(t) > duration_ns) break;
    consumer.RunUntil(t, *memory, p.lost_reported);
    const uint32_t n = kSizesWords[i % std::size(kSizesWords)];
    producer.Trace(0, tracefmt::ev::kPvHypercallV2, /*tsc=*/t, std::span(words, n));
    ++p.emitted;
  }
  p.dropped = producer.stats(0).dropped;
  return p;
}

std::vector<OverflowPoint> RunOverflowStudy(const OverflowStudyConfig& config) {
  std::vector<OverflowPoint> out;
  for (uint32_t pages : config.pages)
    for (double rate : config.rates_hz)
      for (double ratio : config.latency_over_bound)
        out.push_back(RunOverflowPoint(
            pages, rate, static_cast<uint64_t>(ratio * BoundNs(pages, rate)), config.cycles));
  return out;
}

std::string OverflowTableMarkdown(const std::vector<OverflowPoint>& points) {
  // One row per buffer size and rate, one column per latency / bound: measured (predicted).
  std::vector<double> ratios;
  for (const OverflowPoint& p : points) {
    const double r = std::round(p.latency_ns / p.bound_ns * 100) / 100;
    if (std::find(ratios.begin(), ratios.end(), r) == ratios.end()) ratios.push_back(r);
  }
  std::string out = "| pages/CPU | records/s | bound T |";
  std::string rule = "|---|---|---|";
  for (double r : ratios) {
    out += fmt::format(" L = {}·T |", r);
    rule += "---|";
  }
  out += "\n" + rule + "\n";
  for (size_t i = 0; i < points.size(); i += ratios.size()) {
    const OverflowPoint& first = points[i];
    out += fmt::format("| {} | {:.0f} | {:.3f} ms |", first.pages, first.rate_hz,
                       first.bound_ns / 1e6);
    for (size_t k = 0; k < ratios.size() && i + k < points.size(); ++k) {
      const OverflowPoint& p = points[i + k];
      out += p.dropped == 0 ? " 0 |"
                            : fmt::format(" {:.2f}% ({:.2f}%) |", 100 * p.measured_loss(),
                                          100 * p.predicted_loss());
      if (!p.agrees()) out += " **disagrees** |";
    }
    out += "\n";
  }
  return out;
}

std::string OverflowSvg(const std::vector<OverflowPoint>& points) {
  constexpr double kW = 770, kH = 440, kLeft = 70, kRight = 200, kTop = 40, kBottom = 60;
  constexpr double kXMin = 0.1, kXMax = 10;  // latency / bound, log scale
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  auto x_of = [&](double r) {
    r = std::clamp(r, kXMin, kXMax);
    return kLeft +
           pw * (std::log10(r) - std::log10(kXMin)) / (std::log10(kXMax) - std::log10(kXMin));
  };
  auto y_of = [&](double loss) { return kTop + ph * (1.0 - loss); };
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' "
      "font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n",
      kW, kH);
  svg += fmt::format(
      "<text x='{}' y='22' font-size='15'>Xen trace buffer loss vs consumer "
      "wake-up latency</text>\n",
      kLeft);
  // Axes and grid.
  for (double r : {0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0}) {
    svg += fmt::format(
        "<line x1='{0}' y1='{1}' x2='{0}' y2='{2}' stroke='#ddd'/>"
        "<text x='{0}' y='{3}' text-anchor='middle'>{4}</text>\n",
        x_of(r), kTop, kTop + ph, kTop + ph + 18, r);
  }
  for (double l : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    svg += fmt::format(
        "<line x1='{0}' y1='{1}' x2='{2}' y2='{1}' stroke='#ddd'/>"
        "<text x='{3}' y='{4}' text-anchor='end'>{5:.0f}%</text>\n",
        kLeft, y_of(l), kLeft + pw, kLeft - 6, y_of(l) + 4, l * 100);
  }
  svg += fmt::format(
      "<text x='{}' y='{}' text-anchor='middle'>latency / bound T = (data_size/2) "
      "/ (rate × mean record bytes)   (log scale)</text>\n",
      kLeft + pw / 2, kH - 15);
  svg += fmt::format(
      "<text transform='translate(18,{}) rotate(-90)' text-anchor='middle'>records "
      "lost</text>\n",
      kTop + ph / 2);
  // The bound and the predicted loss curve.
  svg += fmt::format(
      "<line x1='{0}' y1='{1}' x2='{0}' y2='{2}' stroke='black' "
      "stroke-dasharray='6,4'/>\n",
      x_of(1.0), kTop, kTop + ph);
  std::string curve;
  for (int i = 0; i <= 200; ++i) {
    const double r = kXMin * std::pow(kXMax / kXMin, i / 200.0);
    const double loss = r <= 1 ? 0 : (r - 1) / (r + 1);
    curve += fmt::format("{}{:.1f},{:.1f}", i ? " " : "", x_of(r), y_of(loss));
  }
  svg +=
      fmt::format("<polyline points='{}' fill='none' stroke='black' stroke-width='1.5'/>\n", curve);
  // Measured points, one colour per buffer size.
  const char* colours[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"};
  std::vector<uint32_t> sizes;
  for (const OverflowPoint& p : points)
    if (std::find(sizes.begin(), sizes.end(), p.pages) == sizes.end()) sizes.push_back(p.pages);
  for (const OverflowPoint& p : points) {
    const size_t c =
        static_cast<size_t>(std::find(sizes.begin(), sizes.end(), p.pages) - sizes.begin());
    svg += fmt::format(
        "<circle cx='{:.1f}' cy='{:.1f}' r='4' fill='none' stroke='{}' "
        "stroke-width='1.5'/>\n",
        x_of(p.latency_ns / p.bound_ns), y_of(p.measured_loss()), colours[c % 5]);
  }
  double ly = kTop + 10;
  for (size_t c = 0; c < sizes.size(); ++c, ly += 20) {
    svg += fmt::format(
        "<circle cx='{}' cy='{}' r='4' fill='none' stroke='{}' stroke-width='1.5'/>"
        "<text x='{}' y='{}'>measured, {} page{}/CPU</text>\n",
        kLeft + pw + 15, ly, colours[c % 5], kLeft + pw + 25, ly + 4, sizes[c],
        sizes[c] == 1 ? "" : "s");
  }
  svg += fmt::format(
      "<line x1='{0}' y1='{1}' x2='{2}' y2='{1}' stroke='black'/><text x='{3}' "
      "y='{4}'>predicted (L−T)/(L+T)</text>\n",
      kLeft + pw + 8, ly, kLeft + pw + 22, kLeft + pw + 25, ly + 4);
  ly += 20;
  svg += fmt::format(
      "<line x1='{0}' y1='{1}' x2='{2}' y2='{1}' stroke='black' "
      "stroke-dasharray='6,4'/><text x='{3}' y='{4}'>bound: L = T</text>\n",
      kLeft + pw + 8, ly, kLeft + pw + 22, kLeft + pw + 25, ly + 4);
  svg += "</svg>\n";
  return svg;
}

}  // namespace simulator
