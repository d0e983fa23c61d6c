#include "xenbaked/live_table.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "tracefmt/events.h"

namespace xenbaked {
namespace {

constexpr size_t kMaxNameColumns = 18;  // xenbake-top's
constexpr size_t kMinNameColumns = 6;
// ID, VCPU, ?, CPU%, WAIT, BLK%, DISP/s, LOST and the spaces between the columns.
constexpr size_t kFixedColumns = 5 + 1 + 1 + 4 + 1 + 1 + 1 + 6 + 1 + 6 + 1 + 6 + 1 + 7 + 1 + 6;

// Domain names are set by less-privileged users: keep printable ASCII only, bounded width.
std::string SafeName(const std::string& raw, uint32_t domid, size_t width) {
  if (domid == tracefmt::ev::kIdleDomain) return "(idle)";
  std::string out;
  for (char c : raw) {
    if (out.size() >= width) break;
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

// Lines cut to the width, and no more lines than the terminal has (the last one says so).
std::string Fit(const std::vector<std::string>& lines, LiveTableSize size) {
  std::string out;
  const size_t rows = std::max<size_t>(size.rows, 2);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = lines[i];
    if (i + 1 == rows - 1 && lines.size() > rows - 1) {
      line = fmt::format("... {} more lines", lines.size() - i);
      out += line.substr(0, size.columns) + "\n";
      break;
    }
    out += line.substr(0, size.columns) + "\n";
  }
  return out;
}

}  // namespace

std::string RenderLiveTable(const Window* window, const AccountingSnapshot& totals,
                            const DaemonHealth& health,
                            const std::unordered_map<uint32_t, std::string>& names,
                            LiveTableSize size, const ReconcileReport* reconcile) {
  std::vector<std::string> lines;
  lines.push_back(fmt::format(
      "xenbaked {} [{}] | records {} | lost {} | wakes irq {} timer {} | drain max {:.1f} us | "
      "anomalies {}",
      health.version.empty() ? XENBAKED_VERSION : health.version, health.backend, health.records,
      health.lost_records, health.wakes_irq, health.wakes_timer,
      static_cast<double>(health.drain_latency.max_ns) / 1e3, health.anomalies));
  if (!health.untraced_cpus.empty())
    lines.push_back(fmt::format("WARNING: CPU(s) {} online without a trace buffer: not accounted",
                                fmt::join(health.untraced_cpus, ",")));
  if (reconcile != nullptr && reconcile->host.vcpus > 0) {
    const DomainReconcile& h = reconcile->host;
    lines.push_back(fmt::format(
        "vs Xen's cpu_time: {:+.3f} ms over {:.1f} s on {} vCPUs (explained within -{:.3f}/+{:.3f} "
        "ms), {} unexplained period(s)",
        static_cast<double>(h.error_ns()) / 1e6, static_cast<double>(reconcile->period_ns) / 1e9,
        h.vcpus, static_cast<double>(h.bound_below_ns()) / 1e6,
        static_cast<double>(h.bound_above_ns()) / 1e6, reconcile->unexplained_periods));
  }
  if (window == nullptr || window->end_ns <= window->start_ns) {
    lines.push_back(
        fmt::format("(first window not closed yet; {} domains seen)", totals.domains.size()));
    return Fit(lines, size);
  }
  const double len_ns = static_cast<double>(window->end_ns - window->start_ns);
  const size_t name_columns =
      std::clamp(size.columns > kFixedColumns ? size.columns - kFixedColumns : 0, kMinNameColumns,
                 kMaxNameColumns);
  lines.push_back(fmt::format(
      "last {:.1f} s; % of one CPU, summed over vCPUs; xenbake-top shows more", len_ns / 1e9));
  lines.push_back(fmt::format("{:>5} {:<{}} {:>4} ? {:>6} {:>6} {:>6} {:>7} {:>6}", "ID", "NAME",
                              name_columns, "VCPU", "CPU%", "WAIT", "BLK%", "DISP/s", "LOST"));
  std::vector<const DomainTotals*> rows;
  for (const DomainTotals& d : window->delta.domains) rows.push_back(&d);
  std::sort(rows.begin(), rows.end(), [](const DomainTotals* a, const DomainTotals* b) {
    return a->running_ns != b->running_ns ? a->running_ns > b->running_ns : a->domid < b->domid;
  });
  for (const DomainTotals* d : rows) {
    auto it = names.find(d->domid);
    const std::string name =
        SafeName(it == names.end() ? std::string() : it->second, d->domid, name_columns);
    lines.push_back(fmt::format("{:>5} {:<{}} {:>4} {} {:>6.1f} {:>6.1f} {:>6.1f} {:>7.0f} {:>6}{}",
                                d->domid, name, name_columns, d->vcpus.size(),
                                d->unknown_ns > 0 ? '?' : ' ', 100.0 * d->running_ns / len_ns,
                                100.0 * d->runnable_ns / len_ns, 100.0 * d->blocked_ns / len_ns,
                                d->dispatches * 1e9 / len_ns, d->lost_records,
                                d->destroyed ? " (destroyed)" : ""));
  }
  return Fit(lines, size);
}

LiveTableSize LiveTerminal::Size() const {
  winsize ws{};
  LiveTableSize size;
  if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    size.columns = ws.ws_col;
    size.rows = ws.ws_row;
  }
  return size;
}

bool LiveTerminal::Draw(const std::string& table) {
  std::fputs("\033[H\033[J", out_);  // redraw in place
  std::fputs(table.c_str(), out_);
  if (std::fflush(out_) == 0 && !std::ferror(out_)) return true;
  std::clearerr(out_);
  return false;
}

bool LiveTerminal::HungUp() const {
  pollfd p{.fd = ::fileno(out_), .events = POLLOUT, .revents = 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace xenbaked
