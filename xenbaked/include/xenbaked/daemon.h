// xenbaked/daemon.h — the daemon put together: options, a hypervisor backend, the drain loop, the
// accounting and its windows, the publishers, signals, systemd notification, the live table.
//
// `xenbaked/main.cc` is one line: `return xenbaked::Main(argc, argv);`. Everything else is here
// so tests and the benchmark link the same code.
//
//   DaemonOptions opts = ...;                         // ParseOptions or by hand
//   boost::asio::io_context io;
//   AsioScheduler scheduler(io);
//   Daemon daemon(io, scheduler, hypervisor, opts, log);
//   if (auto st = daemon.Start(); !st) die(st);
//   io.run();                                          // returns after SIGTERM / --duration
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tracefmt/result.h"
#include "xenbaked/drain_loop.h"
#include "xenbaked/hypervisor.h"
#include "xenbaked/log.h"
#include "xenbaked/publisher.h"
#include "xenbaked/reconcile.h"
#include "xenbaked/scheduler.h"
#include "xenbaked/windows.h"

namespace xenbaked {

struct SimulateOptions {
  uint32_t cpus = 4;
  uint32_t domains = 8;  // Domain-0 included
  uint32_t vcpus = 2;    // per domain
  double speed = 1.0;    // simulated seconds per wall second
  uint64_t seed = 1;
  double churn_hz = 0;  // domain creations per second
};

struct DaemonOptions {
  // Tracing
  uint32_t pages_per_cpu = 32;
  // Class names ("sched,dom0op") or a number. The default is what the accounting reads: the
  // scheduler's runstate (0x00021000) and verbose (0x00028000) subclasses and dom0's domain
  // operations (0x00041000), which Xen's class x subclass match combines as 0x00069000. Not the
  // scheduler-specific records (credit2 writes most of a capture's), nor the per-hypercall,
  // per-VM-exit and per-grant records (pv, hvm, mem) behind the hypercall and I/O counts: those
  // multiply the records and cost the hypervisor time on every event; opt-in.
  std::string event_mask = "0x00069000";
  std::string cpu_mask = "all";  // "all" or a list "0-3,6"
  InitialContents initial_contents = InitialContents::kDiscard;
  bool disable_tracing_on_exit = true;
  // Loop
  uint64_t backstop_ms = 100;
  uint32_t budget_kib = 1024;   // per CPU per pass
  uint64_t interval_ms = 1000;  // publication interval
  // Reading every vCPU's cpu_time from the hypervisor and comparing it with the trace
  // (xenbaked/reconcile.h), at the first publication at least this long after the previous one;
  // 0: never. One query per vCPU each time.
  uint64_t reconcile_interval_ms = 1000;
  // Accounting
  std::vector<uint64_t> windows_s = {1, 10};
  uint32_t history = 10;
  // Paths ("" = off)
  std::string shm_name;
  std::string socket_path;   // Unix-socket JSON API
  std::string socket_group;  // the socket's group, name or number ("" = the daemon's own)
  std::string log_dir;       // accounting log (accounting.log) lives here
  std::string capture_path;  // raw xentrace-format capture
  // Prometheus endpoint: off unless a port is given (0 = any free port, logged).
  std::optional<uint16_t> metrics_port;
  std::string metrics_address = "127.0.0.1";
  // Process
  LogLevel log_level = LogLevel::kInfo;
  bool quiet = false;        // no live table
  bool lock_memory = false;  // mlockall
  int rt_priority = 0;       // SCHED_FIFO priority, 0 = off
  int nice = 0;
  double duration_s = 0;  // 0 = until SIGTERM/SIGINT
  // Backend: "auto" = Xen when present, else the simulator; "xen"; "simulate".
  std::string backend = "auto";
  SimulateOptions simulate;
};

// Parses argv (and --config FILE, flat TOML). Throws only for --help/--version/bad options,
// which Main turns into an exit code; tests use it to check option handling.
DaemonOptions ParseOptions(int argc, char** argv);

// Parses "all" or "0-3,6" into CPU ids; empty result for "all". nullopt on bad input.
std::optional<std::vector<uint32_t>> ParseCpuList(std::string_view text);

class Daemon {
 public:
  // `live_out`: where the live table goes (null = none). The hypervisor must outlive the daemon.
  Daemon(boost::asio::io_context& io, Scheduler& scheduler, Hypervisor& hypervisor,
         DaemonOptions options, Logger& log, std::FILE* live_out = nullptr);
  ~Daemon();

  void AddPublisher(std::unique_ptr<Publisher> publisher);
  // Enables tracing, starts the loop, the publication timer and signal handling.
  tracefmt::Status Start();
  // The orderly end: final drain, last publish, close publishers, stop waiting. Idempotent.
  void Stop();
  // Called before the final drain (e.g. to stop a simulated producer).
  void OnBeforeFinalDrain(std::function<void()> hook);

  bool stopped() const;
  const DrainLoop& loop() const;
  const AccountingEngine& engine() const;
  const WindowHistory& windows() const;
  // The newest totals (as published at the last interval, or at Stop).
  const AccountingSnapshot& totals() const;
  // Runs one publication interval now (tests).
  void PublishNow();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole program: options, backend choice, run; returns the exit code.
int Main(int argc, char** argv);

}  // namespace xenbaked
