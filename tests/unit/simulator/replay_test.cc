// Replay: a real capture goes back through the rings unchanged, minus the ring artefacts.
#include "simulator/replay.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "simulator/produced_log.h"
#include "simulator/simulated_host.h"
#include "tracefmt/events.h"
#include "tracefmt/trace_file.h"

namespace simulator {
namespace {

const std::string kCapture = std::string(XENBAKED_SHARED_DATA) + "/xen-4.17-qemu/trace-sched.bin";

TEST(ReplayTest, RealCaptureIsReproducedRecordForRecord) {
  if (!std::filesystem::exists(kCapture)) GTEST_SKIP() << "no shared capture at " << kCapture;
  HostConfig config;
  config.replay_path = kCapture;
  config.replay_speed = 1.0;
  config.keep_produced_log = true;
  auto host = SimulatedHost::Create(config);
  ASSERT_TRUE(host.ok()) << host.error().Describe();
  EXPECT_EQ((*host)->physinfo().nr_cpus, 2u);
  ASSERT_TRUE((*host)->SetBufferPages(1024).ok());  // 4 MiB per CPU: the capture fits
  (*host)->Advance(10'000'000'000);

  auto reader = tracefmt::TraceFileReader::Open(kCapture);
  ASSERT_TRUE(reader.ok());
  std::map<uint32_t, std::vector<tracefmt::Record>> want;
  tracefmt::Chunk chunk;
  while (reader->Next(chunk)) {
    tracefmt::RecordCursor cursor(chunk.bytes);
    tracefmt::Record r;
    while (cursor.Next(r))
      if (r.event != tracefmt::ev::kWrapBuffer && r.event != tracefmt::ev::kLostRecords)
        want[chunk.cpu].push_back(r);
  }
  (*host)->WithProducedLog([&](const ProducedLog* log) {
    for (const auto& [cpu, records] : want) {
      std::vector<tracefmt::Record> got;
      for (const tracefmt::Record& r : log->WrittenRecords(cpu))
        if (r.event != tracefmt::ev::kWrapBuffer) got.push_back(r);
      ASSERT_EQ(got.size(), records.size()) << "cpu " << cpu;
      EXPECT_TRUE(got == records) << "cpu " << cpu;
    }
  });
  const Truth t = (*host)->TruthSnapshot();
  EXPECT_EQ(t.TotalDropped(), 0u);
  EXPECT_FALSE((*host)->Domains().empty());  // Domain-0 seen in the runstate changes
}

}  // namespace
}  // namespace simulator
