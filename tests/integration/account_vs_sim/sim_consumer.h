// A consumer of a simulated host for the accounting tests: its rings drained the way the daemon
// drains Xen's (tracefmt::DrainRing, publishing cons), merged by TSC (tracefmt::LiveMerger) and
// fed to an AccountingEngine.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <span>

#include "simulator/simulated_host.h"
#include "tracefmt/merge.h"
#include "tracefmt/ring.h"
#include "xenbaked/accounting.h"

namespace xenbaked::testing {

// A consumer of the simulated host: drain every CPU, merge, account.
class SimulatedConsumer {
 public:
  explicit SimulatedConsumer(simulator::HostConfig config, uint32_t pages) {
    auto host = simulator::SimulatedHost::Create(std::move(config));
    EXPECT_TRUE(host.ok()) << host.error().Describe();
    host_ = std::move(*host);
    EXPECT_TRUE(host_->EnableTracing(pages).ok());
    cpu_khz_ = host_->physinfo().cpu_khz;
    engine_ = std::make_unique<xenbaked::AccountingEngine>(
        xenbaked::AccountingConfig{.cpu_khz = cpu_khz_});
  }

  // Runs the host for `ns` in steps of `step`, draining every CPU after each step.
  void Run(uint64_t ns, uint64_t step) {
    for (uint64_t done = 0; done < ns; done += step) {
      host_->Advance(std::min(step, ns - done));
      DrainAll();
    }
  }

  // Engine snapshot at the host's present instant: every record made so far is in, and the
  // model stamps later records with later TSCs, so nothing can still arrive before it.
  xenbaked::AccountingSnapshot SnapshotNow() const {
    const uint64_t tsc_now =
        static_cast<uint64_t>(static_cast<unsigned __int128>(host_->now_ns()) * cpu_khz_ / 1000000);
    return engine_->Snapshot(std::max(tsc_now, engine_->now_tsc()));
  }

  simulator::SimulatedHost& host() { return *host_; }
  xenbaked::AccountingEngine& engine() { return *engine_; }
  uint64_t cpu_khz() const { return cpu_khz_; }

 private:
  void DrainAll() {
    for (uint32_t cpu : host_->online_cpus()) {
      std::span<std::byte> buffer = host_->CpuBuffer(cpu);
      if (buffer.empty()) continue;
      std::atomic_ref<uint32_t> cons(*reinterpret_cast<uint32_t*>(buffer.data()));
      std::atomic_ref<uint32_t> prod(*reinterpret_cast<uint32_t*>(buffer.data() + 4));
      const uint32_t prod_untrusted = prod.load(std::memory_order_acquire);
      const tracefmt::RingDrain d = tracefmt::DrainRing(
          buffer.subspan(tracefmt::kTbufHeaderBytes), cons.load(std::memory_order_relaxed),
          prod_untrusted, /*max_bytes=*/~0u, [](std::span<const std::byte>) {},
          [&](const tracefmt::Record& rec) { merger_.Push(cpu, rec); });
      EXPECT_TRUE(d.ok());
      cons.store(d.new_cons, std::memory_order_release);
    }
    merger_.EmitAll([&](const tracefmt::MergedRecord& m) { engine_->Add(m); });
  }

  std::unique_ptr<simulator::SimulatedHost> host_;
  uint64_t cpu_khz_ = 0;
  std::unique_ptr<xenbaked::AccountingEngine> engine_;
  tracefmt::LiveMerger merger_;
};

}  // namespace xenbaked::testing
