// The libxen shim, called through Xen's own headers, against an in-process simulator and its
// server: what an unmodified consumer sees.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "simulator/sim_server.h"
#include "simulator/simulated_host.h"
#include "tracefmt/events.h"

#define XC_WANT_COMPAT_MAP_FOREIGN_API
extern "C" {
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xenstore.h>
}

namespace simulator {
namespace {

class ShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shm_ = (std::filesystem::temp_directory_path() /
            ("xenbake-shim-test-" + std::to_string(::getpid())))
               .string();
    HostConfig config;
    config.workload.cpu_ids = {0, 1, 3};
    config.workload.domains = 4;
    config.shm_path = shm_;
    auto host = SimulatedHost::Create(config);
    ASSERT_TRUE(host.ok()) << host.error().Describe();
    host_ = std::move(*host);
    auto server = SimServer::Start(*host_);
    ASSERT_TRUE(server.ok()) << server.error().Describe();
    server_ = std::move(*server);
    ::setenv("XENBAKE_SIM", shm_.c_str(), 1);
    xch_ = xc_interface_open(nullptr, nullptr, 0);
    ASSERT_NE(xch_, nullptr) << std::strerror(errno);
  }
  void TearDown() override {
    if (xch_ != nullptr) xc_interface_close(xch_);
    if (server_) server_->Stop();
    std::filesystem::remove(shm_);
  }
  uint16_t TInfo16(const void* t_info, size_t index) {
    uint16_t v;
    std::memcpy(&v, static_cast<const char*>(t_info) + 2 * index, 2);
    return v;
  }

  std::string shm_;
  std::unique_ptr<SimulatedHost> host_;
  std::unique_ptr<SimServer> server_;
  xc_interface* xch_ = nullptr;
};

TEST_F(ShimTest, PhysinfoAndCpumapsDescribeTheSimulatedHost) {
  xc_physinfo_t info;
  ASSERT_EQ(xc_physinfo(xch_, &info), 0);
  EXPECT_EQ(info.nr_cpus, 3u);
  EXPECT_EQ(info.max_cpu_id, 3u);
  EXPECT_EQ(info.cpu_khz, 2596120u);
  EXPECT_EQ(xc_get_max_cpus(xch_), 4);
  EXPECT_EQ(xc_get_cpumap_size(xch_), 1);
  xc_cpumap_t map = xc_cpumap_alloc(xch_);
  ASSERT_NE(map, nullptr);
  xc_cpumap_setcpu(3, map);
  EXPECT_EQ(map[0], 0x8);
  ASSERT_EQ(xc_tbuf_set_cpu_mask(xch_, map), 0);
  std::free(map);
  ASSERT_EQ(xc_tbuf_set_evt_mask(xch_, tracefmt::ev::kSched), 0);
  EXPECT_EQ(host_->tbuf_info().event_mask, tracefmt::ev::kSched);
}

TEST_F(ShimTest, TraceBuffersMapAsXentraceMapsThem) {
  unsigned long mfn = 0, size = 0;
  ASSERT_EQ(xc_tbuf_enable(xch_, 4, &mfn, &size), 0);
  EXPECT_EQ(size, 4096u);
  unsigned long pages = 0;
  ASSERT_EQ(xc_tbuf_get_size(xch_, &pages), 0);
  EXPECT_EQ(pages, 4u);
  EXPECT_NE(xc_tbuf_set_size(xch_, 8), 0);  // one shot
  void* t_info = xc_map_foreign_range(xch_, DOMID_XEN, static_cast<int>(size), PROT_READ, mfn);
  ASSERT_NE(t_info, nullptr);
  EXPECT_EQ(TInfo16(t_info, 0), 4u);
  EXPECT_EQ(TInfo16(t_info, 1 + 2), 0u);  // CPU 2 is not online
  host_->Advance(5'000'000);
  xenforeignmemory_handle* fmem = xenforeignmemory_open(nullptr, 0);
  ASSERT_NE(fmem, nullptr);
  for (uint32_t cpu : {0u, 1u, 3u}) {
    const uint16_t offset = TInfo16(t_info, 1 + cpu);
    ASSERT_NE(offset, 0u);
    xen_pfn_t frames[4];
    for (int i = 0; i < 4; ++i)
      frames[i] = tracefmt::Load32(static_cast<const std::byte*>(t_info) + 4 * (offset + i));
    int errs[4] = {1, 1, 1, 1};
    void* buf = xenforeignmemory_map(fmem, DOMID_XEN, PROT_READ | PROT_WRITE, 4, frames, errs);
    ASSERT_NE(buf, nullptr);
    EXPECT_EQ(errs[0] | errs[1] | errs[2] | errs[3], 0);
    EXPECT_EQ(std::memcmp(buf, host_->CpuBuffer(cpu).data(), 4 * 4096), 0) << cpu;
    void* again = xc_map_foreign_pages(xch_, DOMID_XEN, PROT_READ, frames, 4);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(std::memcmp(again, buf, 4 * 4096), 0);
    ::munmap(again, 4 * 4096);
    xenforeignmemory_unmap(fmem, buf, 4);
  }
  xenforeignmemory_close(fmem);
  EXPECT_EQ(xc_map_foreign_range(xch_, 1, 4096, PROT_READ, mfn), nullptr);  // not DOMID_XEN
  ::munmap(t_info, size);
  ASSERT_EQ(xc_tbuf_disable(xch_), 0);
  EXPECT_FALSE(host_->tracing_enabled());
}

TEST_F(ShimTest, VirqTbufIsAnEventChannelBoundOnce) {
  unsigned long mfn = 0, size = 0;
  ASSERT_EQ(xc_tbuf_enable(xch_, 2, &mfn, &size), 0);
  xenevtchn_handle* xce = xenevtchn_open(nullptr, 0);
  ASSERT_NE(xce, nullptr);
  const int port = xenevtchn_bind_virq(xce, VIRQ_TBUF);
  ASSERT_GE(port, 0);
  xenevtchn_handle* second = xenevtchn_open(nullptr, 0);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(xenevtchn_bind_virq(second, VIRQ_TBUF), -1);
  EXPECT_EQ(errno, EEXIST);
  xenevtchn_close(second);
  // Fill a buffer past half: the fd becomes readable (however long the server takes).
  while (host_->TruthSnapshot().cpus[0].trace.notifications == 0) host_->Advance(1'000'000);
  pollfd p{xenevtchn_fd(xce), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, -1), 1);
  EXPECT_EQ(xenevtchn_pending(xce), port);
  EXPECT_EQ(xenevtchn_unmask(xce, static_cast<evtchn_port_t>(port)), 0);
  EXPECT_EQ(xenevtchn_unbind(xce, static_cast<evtchn_port_t>(port)), 0);
  xenevtchn_close(xce);
}

TEST_F(ShimTest, AVirqRaisedWhileMaskedIsDeliveredOnUnmask) {
  unsigned long mfn = 0, size = 0;
  ASSERT_EQ(xc_tbuf_enable(xch_, 2, &mfn, &size), 0);
  xenevtchn_handle* xce = xenevtchn_open(nullptr, 0);
  ASSERT_NE(xce, nullptr);
  const int port = xenevtchn_bind_virq(xce, VIRQ_TBUF);
  ASSERT_GE(port, 0);
  auto notifications = [&] { return host_->TruthSnapshot().cpus[0].trace.notifications; };
  while (notifications() == 0) host_->Advance(1'000'000);
  pollfd p{xenevtchn_fd(xce), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, -1), 1);
  ASSERT_EQ(xenevtchn_pending(xce), port);
  // Consume CPU 0's buffer so that it crosses half full again while the port is still masked.
  std::span<std::byte> buf = host_->CpuBuffer(0);
  tracefmt::Store32(buf.data(), tracefmt::Load32(buf.data() + 4));
  while (notifications() < 2) host_->Advance(1'000'000);
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // masked: nothing new to read, whenever the server gets to it
  ASSERT_EQ(xenevtchn_unmask(xce, static_cast<evtchn_port_t>(port)), 0);
  ASSERT_EQ(::poll(&p, 1, -1), 1);
  EXPECT_EQ(xenevtchn_pending(xce), port);
  xenevtchn_close(xce);
}

TEST_F(ShimTest, DomainListComesFromTheModel) {
  xc_domaininfo_t info[16];
  const int n = xc_domain_getinfolist(xch_, 0, 16, info);
  ASSERT_EQ(n, 4);
  EXPECT_EQ(info[0].domain, 0);
  EXPECT_EQ(info[0].nr_online_vcpus, 2u);
  EXPECT_EQ(xc_domain_getinfolist(xch_, 2, 16, info), 2);
  EXPECT_EQ(info[0].domain, 2);
}

TEST_F(ShimTest, TbufSysctlReportsWhereTInfoIs) {
  unsigned long mfn = 0, size = 0;
  ASSERT_EQ(xc_tbuf_enable(xch_, 2, &mfn, &size), 0);
  struct xen_sysctl sysctl {};
  sysctl.cmd = XEN_SYSCTL_tbuf_op;
  sysctl.u.tbuf_op.cmd = XEN_SYSCTL_TBUFOP_get_info;
  ASSERT_EQ(xc_sysctl(xch_, &sysctl), 0);
  EXPECT_EQ(sysctl.u.tbuf_op.buffer_mfn, mfn);
  EXPECT_EQ(sysctl.u.tbuf_op.size, size);
  EXPECT_EQ(sysctl.u.tbuf_op.evt_mask, tracefmt::ev::kAll);
  sysctl.cmd = XEN_SYSCTL_physinfo;
  EXPECT_EQ(xc_sysctl(xch_, &sysctl), -1);
  EXPECT_EQ(errno, ENOSYS);
}

TEST_F(ShimTest, XenstoreNamesDomains) {
  struct xs_handle* xs = xs_open(XS_OPEN_READONLY);
  ASSERT_NE(xs, nullptr);
  unsigned int len = 0;
  char* name = static_cast<char*>(xs_read(xs, XBT_NULL, "/local/domain/0/name", &len));
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(std::string(name, len), "Domain-0");
  std::free(name);
  name = static_cast<char*>(xs_read(xs, XBT_NULL, "/local/domain/2/name", &len));
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(std::string(name, len), "guest-2");
  std::free(name);
  EXPECT_EQ(xs_read(xs, XBT_NULL, "/local/domain/99/name", &len), nullptr);
  EXPECT_EQ(xs_read(xs, XBT_NULL, "/vm", &len), nullptr);
  xs_close(xs);
}

}  // namespace
}  // namespace simulator
