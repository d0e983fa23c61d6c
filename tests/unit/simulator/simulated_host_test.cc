// The SimulatedHost facade: what the daemon's --simulate mode relies on.
#include "simulator/simulated_host.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "test_ring.h"
#include "tracefmt/events.h"
#include "tracefmt/ring.h"

namespace simulator {
namespace {

namespace ev = tracefmt::ev;

uint16_t Load16(std::span<const std::byte> bytes, size_t index) {
  uint16_t v;
  std::memcpy(&v, bytes.data() + 2 * index, 2);
  return v;
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

std::unique_ptr<SimulatedHost> MakeHost(HostConfig config) {
  auto host = SimulatedHost::Create(std::move(config));
  EXPECT_TRUE(host.ok()) << host.error().Describe();
  return std::move(*host);
}

TEST(SimulatedHostTest, BuffersAreFoundThroughTInfoAsOnXen) {
  HostConfig config;
  config.workload.cpu_ids = {0, 2};
  config.offline_cpu_ids = {1, 3};
  auto host = MakeHost(config);
  EXPECT_EQ(host->physinfo().nr_cpus, 2u);
  EXPECT_EQ(host->physinfo().max_cpu_id, 3u);
  auto info = host->EnableTracing(/*pages=*/4);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->t_info_bytes, 4096u);
  const std::span<std::byte> t_info = host->MapPages(info->t_info_first_page, 1);
  ASSERT_EQ(Load16(t_info, 0), 4u);
  for (uint32_t cpu = 0; cpu <= 3; ++cpu) {
    const uint16_t offset = Load16(t_info, 1 + cpu);
    if (cpu % 2 == 1) {
      EXPECT_EQ(offset, 0u);
      EXPECT_TRUE(host->CpuBuffer(cpu).empty());
      continue;
    }
    const uint32_t first_mfn = tracefmt::Load32(t_info.data() + 4 * offset);
    EXPECT_EQ(host->MapPages(first_mfn, 4).data(), host->CpuBuffer(cpu).data());
  }
}

TEST(SimulatedHostTest, NotifyFdBecomesReadableWhenABufferCrossesHalfFull) {
  HostConfig config;
  auto host = MakeHost(config);
  ASSERT_TRUE(host->EnableTracing(/*pages=*/2).ok());
  EXPECT_FALSE(Readable(host->notify_fd()));
  for (int i = 0; i < 1000 && !Readable(host->notify_fd()); ++i) host->Advance(1'000'000);
  EXPECT_TRUE(Readable(host->notify_fd()));
  EXPECT_GE(host->AckNotification(), 1u);
  EXPECT_FALSE(Readable(host->notify_fd()));
}

TEST(SimulatedHostTest, BootTimeBuffersAreFullAndResumeWithWrapAndLost) {
  HostConfig config;
  config.boot_tbuf_pages = 2;
  config.boot_traced_ns = 500'000'000;
  auto host = MakeHost(config);
  EXPECT_TRUE(host->tracing_enabled());
  EXPECT_EQ(host->tbuf_info().event_mask, ev::kAll);
  auto info = host->EnableTracing(/*pages=*/32);  // ignored: the size was set at boot
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(Load16(host->TInfo(), 0), 2u);
  const Truth before = host->TruthSnapshot();
  for (uint32_t cpu : host->online_cpus()) {
    std::span<std::byte> buf = host->CpuBuffer(cpu);
    const uint32_t cons = tracefmt::Load32(buf.data());
    const uint32_t prod = tracefmt::Load32(buf.data() + 4);
    EXPECT_GT(tracefmt::RingUnconsumed(host->data_size(), cons, prod), host->data_size() - 40);
    tracefmt::Store32(buf.data(), prod);  // xentrace -D: discard
  }
  host->Advance(20'000'000);
  for (const CpuTruth& c : before.cpus) {
    ASSERT_GT(c.trace.pending_lost, 0u) << c.cpu;
    std::span<std::byte> buf = host->CpuBuffer(c.cpu);
    std::vector<tracefmt::Record> recs;
    tracefmt::DrainRing(
        buf.subspan(8), tracefmt::Load32(buf.data()), tracefmt::Load32(buf.data() + 4), ~0u,
        [](auto) {}, [&](const tracefmt::Record& r) { recs.push_back(r); });
    ASSERT_GE(recs.size(), 2u);
    size_t i = recs[0].event == ev::kWrapBuffer ? 1 : 0;
    auto lost = tracefmt::AsLostRecords(recs[i]);
    ASSERT_TRUE(lost.has_value()) << c.cpu;
    EXPECT_EQ(lost->count, c.trace.pending_lost);
  }
}

TEST(SimulatedHostTest, DomainListNamesDomainZero) {
  HostConfig config;
  config.workload.domains = 3;
  config.workload.vcpus_per_domain = 2;
  auto host = MakeHost(config);
  host->Advance(10'000'000);
  const auto domains = host->Domains();
  ASSERT_EQ(domains.size(), 3u);
  EXPECT_EQ(domains[0].id, 0u);
  EXPECT_EQ(domains[0].name, "Domain-0");
  EXPECT_EQ(domains[2].vcpus, 2u);
}

// CPU hotplug after the buffers exist: the CPU is online (physinfo counts it) but t_info gives it
// no buffer, as Xen does; only an offline CPU can come online.
TEST(SimulatedHostTest, ACpuBroughtOnlineLaterHasNoBuffer) {
  HostConfig config;
  config.workload.cpu_ids = {0, 2};
  config.offline_cpu_ids = {1, 3};
  auto host = MakeHost(config);
  ASSERT_TRUE(host->EnableTracing(/*pages=*/4).ok());
  EXPECT_EQ(host->online_cpus(), (std::vector<uint32_t>{0, 2}));
  ASSERT_TRUE(host->BringCpuOnline(1));
  EXPECT_EQ(host->online_cpus(), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(host->physinfo().nr_cpus, 3u);
  EXPECT_EQ(host->physinfo().max_cpu_id, 3u);
  EXPECT_TRUE(host->CpuBuffer(1).empty());
  EXPECT_FALSE(host->CpuBuffer(2).empty());
  EXPECT_TRUE(host->BringCpuOnline(1)) << "already online: nothing to do";
  EXPECT_FALSE(host->BringCpuOnline(2)) << "online from the start";
  EXPECT_FALSE(host->BringCpuOnline(9)) << "not a CPU of this host";
  host->Advance(50'000'000);  // the workload keeps running on its own CPUs
  EXPECT_EQ(host->TruthSnapshot().cpus.size(), 2u);
}

TEST(SimulatedHostTest, SharedMemoryFileMapsToTheSameBytes) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("xenbake-sim-test-" + std::to_string(::getpid())))
          .string();
  HostConfig config;
  config.shm_path = path;
  auto host = MakeHost(config);
  auto info = host->EnableTracing(/*pages=*/2);
  ASSERT_TRUE(info.ok());
  host->Advance(5'000'000);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const uint16_t offset = Load16(host->TInfo(), 1);
  const uint32_t mfn = tracefmt::Load32(host->TInfo().data() + 4 * offset);
  void* p = ::mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t{mfn} * 4096);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(std::memcmp(p, host->CpuBuffer(0).data(), 2 * 4096), 0);
  ::munmap(p, 2 * 4096);
  ::close(fd);
  std::filesystem::remove(path);
}

TEST(SimulatedHostTest, RealtimeRunnerAdvancesUntilStopped) {
  HostConfig config;
  auto host = MakeHost(config);
  ASSERT_TRUE(host->EnableTracing(/*pages=*/4).ok());
  ASSERT_TRUE(host->StartRealtime(/*speed=*/50.0).ok());
  // Wait for progress, however slow the machine (no timing assertion).
  while (host->now_ns() < 20'000'000) std::this_thread::yield();
  const Truth t = host->TruthSnapshot();  // from another thread while it runs
  EXPECT_GT(t.records_emitted, 0u);
  host->Stop();
  const uint64_t stopped_at = host->now_ns();
  EXPECT_EQ(host->now_ns(), stopped_at);
}

}  // namespace
}  // namespace simulator
