// A host's worth of figures for the publishers' tests: accounting totals fed through a real
// WindowHistory, daemon health and domain names, a temporary directory and a file-size limit.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <filesystem>
#include <string>

#include "xenbaked/publish/publish_view.h"

namespace xenbaked::publish::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "xbpub-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  std::string path_;
};

// A file-size limit (RLIMIT_FSIZE, which binds root too) makes write(2) stop short or fail, as
// a filling or full disk does; the end of the scope, or Lift(), is the disk getting space back.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() { Lift(); }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  void Lift() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  sighandler_t old_handler_;
};

// Domain d (1-based) has run d × k ms by second k of engine time; every counter is derived from
// `k` so a reader can check a snapshot is all of one publication.
inline DomainTotals DomainAt(uint32_t domid, uint64_t k) {
  DomainTotals d;
  d.domid = domid;
  d.instance = 1;
  d.running_ns = domid * k * 1'000'000;
  d.runnable_ns = k * 500'000;
  d.blocked_ns = k * 250'000;
  d.unknown_ns = k * 125'000;
  d.dispatches = domid * k;
  d.run_slices = k;
  d.slice_sum_ns = d.running_ns;
  d.slice_min_ns = 1000;
  d.slice_max_ns = 30'000'000;
  d.lost_records = k;
  d.vcpus.resize(2);
  return d;
}

inline CpuTotals CpuAt(uint32_t cpu, uint64_t k) {
  CpuTotals c;
  c.cpu = cpu;
  c.records = k * 1000;
  c.elapsed_ns = k * 1'000'000'000;
  c.accounted_ns = k * 999'000'000;
  c.lost_records = k;
  return c;
}

struct FakeHost {
  AccountingSnapshot totals;
  WindowHistory history{WindowConfig{.lengths_ns = {1'000'000'000, 10'000'000'000}, .history = 4}};
  DaemonHealth health;
  DomainNames names;

  // The state after `seconds` of engine time with `domains` domains and `cpus` CPUs.
  void Advance(uint64_t seconds, uint32_t domains = 3, uint32_t cpus = 2) {
    totals = {};
    totals.at_ns = seconds * 1'000'000'000;
    totals.records = seconds * 1000 * cpus;
    totals.lost_records = seconds;
    for (uint32_t d = 0; d < domains; ++d) totals.domains.push_back(DomainAt(d, seconds));
    for (uint32_t c = 0; c < cpus; ++c) totals.cpus.push_back(CpuAt(c, seconds));
    history.Update(totals);
    health.backend = "simulated";
    health.records = totals.records;
    health.lost_records = totals.lost_records;
    health.wakes_irq = seconds * 3;
    health.wakes_timer = seconds;
    health.drain_latency.count = seconds;
    health.drain_latency.sum_ns = seconds * 20'000;
    health.drain_latency.max_ns = 50'000;
    health.drain_latency.buckets[15] = seconds;  // [16 µs, 32 µs)
    health.cpus.clear();
    for (uint32_t c = 0; c < cpus; ++c) {
      CpuHealth& h = health.cpus.emplace_back();
      h.cpu = c;
      h.buffer_bytes = 131072;
      h.fill_bytes = 1024 * c;
      h.records = seconds * 1000;
    }
    for (uint32_t d = 0; d < domains; ++d) names.try_emplace(d, "guest" + std::to_string(d));
    names[0] = "Domain-0";
  }

  PublishView View(uint64_t monotonic_ns, uint64_t period_ns = 1'000'000'000) const {
    return PublishView{.totals = totals,
                       .windows = history,
                       .health = health,
                       .names = names,
                       .monotonic_ns = monotonic_ns,
                       .realtime_ns = 1'700'000'000'000'000'000 + monotonic_ns,
                       .period_ns = period_ns};
  }
};

}  // namespace xenbaked::publish::testing
