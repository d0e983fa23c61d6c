// simulator/replay.h — a real capture fed back into the rings, as if Xen were producing it.
//
// Every record of a xentrace file goes through the producer again on its own CPU, in TSC order
// across CPUs, at (tsc - first tsc) / cpu_khz / speed of simulated time. WRAP and LOST records are
// ring artefacts of the original run and are not replayed: the producer makes its own.
//
//   auto replay = CaptureReplayer::Load("trace-sched.bin", /*cpu_khz=*/2596120, /*speed=*/1.0);
//   replay->Attach(&producer);
//   replay->AdvanceTo(/*ns=*/1'000'000'000);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "simulator/producer.h"
#include "simulator/scheduler_model.h"
#include "tracefmt/record.h"
#include "tracefmt/result.h"

namespace simulator {

class CaptureReplayer final : public Workload {
 public:
  static tracefmt::Result<std::unique_ptr<CaptureReplayer>> Load(const std::string& path,
                                                                 uint64_t cpu_khz, double speed);
  // The CPUs the capture has records for: the host must have these online.
  std::vector<uint32_t> cpu_ids() const;
  void Attach(TraceProducer* producer) { producer_ = producer; }

  void AdvanceTo(uint64_t ns) override;
  uint64_t now_ns() const override { return now_; }
  Truth TruthNow() const override;
  std::vector<DomainInfo> LiveDomains() const override { return domains_; }
  bool finished() const;
  uint64_t records_total() const { return records_total_; }

 private:
  struct CpuStream {
    uint32_t cpu = 0;
    std::vector<tracefmt::Record> records;  // each with the TSC it is replayed at
    size_t next = 0;
  };
  CaptureReplayer() = default;
  uint64_t ReplayNs(uint64_t tsc) const;

  std::vector<CpuStream> streams_;
  std::vector<DomainInfo> domains_;
  TraceProducer* producer_ = nullptr;
  uint64_t cpu_khz_ = 0;
  double speed_ = 1.0;
  uint64_t first_tsc_ = 0;
  uint64_t now_ = 0;
  uint64_t records_total_ = 0;
  uint64_t records_emitted_ = 0;
};

}  // namespace simulator
