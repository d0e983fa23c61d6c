// simulator/produced_log.h — everything the producer wrote and dropped, per CPU, in order.
//
// The reference a consumer's output is compared with: each CPU's byte stream exactly as it went
// into the ring (so a consumer that copied every window verbatim holds the same bytes) and the
// records that were dropped instead.
//
//   ProducedLog log(/*nr_cpu_ids=*/4);
//   TraceProducer producer(memory, &notifier, &log);
//   ...
//   for (const tracefmt::Record& r : log.WrittenRecords(/*cpu=*/0)) ...
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "simulator/producer.h"
#include "tracefmt/record.h"
#include "tracefmt/result.h"

namespace simulator {

class ProducedLog final : public ProducedRecordObserver {
 public:
  explicit ProducedLog(uint32_t nr_cpu_ids) : cpus_(nr_cpu_ids) {}

  void OnWritten(uint32_t cpu, std::span<const std::byte> record) override;
  void OnDropped(uint32_t cpu, const tracefmt::Record& record) override;

  uint32_t nr_cpu_ids() const { return static_cast<uint32_t>(cpus_.size()); }
  std::span<const std::byte> WrittenBytes(uint32_t cpu) const { return cpus_.at(cpu).written; }
  std::vector<tracefmt::Record> WrittenRecords(uint32_t cpu) const;
  const std::vector<tracefmt::Record>& Dropped(uint32_t cpu) const { return cpus_.at(cpu).dropped; }
  // Writes every CPU's stream as a xentrace file (chunks of at most `chunk_bytes`, whole
  // records), so the file tracefmt reads back equals a perfect consumer's capture.
  tracefmt::Status WriteXentraceFile(const std::string& path, uint32_t chunk_bytes = 65536) const;

 private:
  struct Cpu {
    std::vector<std::byte> written;
    std::vector<tracefmt::Record> dropped;
  };
  std::vector<Cpu> cpus_;
};

}  // namespace simulator
