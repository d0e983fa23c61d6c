// Domain names in the daemon: looked up only for domains not named yet, never listed for every
// domain at each publication. The hypervisor double counts every name lookup (one xenstore read
// each on Xen) and every domain listing; the trace is written into its buffer as Xen would.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "../../unit/xenbaked/accounting_test_util.h"
#include "../../unit/xenbaked/fake_hypervisor.h"
#include "xenbaked/daemon.h"
#include "xenbaked/publisher.h"

namespace xenbaked {
namespace {

using testing::kBlk;
using testing::kRun;
using testing::RunstateChange;

constexpr uint64_t kStepNs = 10'000'000;

class NamesPublisher final : public Publisher {
 public:
  std::string_view name() const override { return "names"; }
  tracefmt::Status Publish(const publish::PublishView& view) override {
    names = view.names;
    health = view.health;
    ++publications;
    return {};
  }
  tracefmt::Status Close(const publish::PublishView& view) override { return Publish(view); }
  publish::DomainNames names;
  DaemonHealth health;
  int publications = 0;
};

class DaemonNamesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonOptions options;
    options.pages_per_cpu = 4;
    options.interval_ms = 1000;
    daemon_ = std::make_unique<Daemon>(io_, scheduler_, hv_, options, log_);
    auto publisher = std::make_unique<NamesPublisher>();
    published_ = publisher.get();
    daemon_->AddPublisher(std::move(publisher));
    ASSERT_TRUE(daemon_->Start());
  }
  void TearDown() override {
    daemon_->Stop();
    io_.restart();
    io_.poll();
  }
  // Each second, every domain in `running` runs a little and blocks again on CPU 0.
  void StepSeconds(uint64_t seconds, const std::vector<uint32_t>& running) {
    for (uint64_t s = 0; s < seconds; ++s) {
      for (uint32_t domid : running) {
        hv_.Put(0, RunstateChange(domid, 0, kBlk, kRun, tsc_ += 1000));
        hv_.Put(0, RunstateChange(domid, 0, kRun, kBlk, tsc_ += 1000));
      }
      for (uint64_t t = 0; t < 1'000'000'000; t += kStepNs) {
        scheduler_.Advance(kStepNs);
        io_.restart();
        io_.poll();
      }
    }
  }
  std::string Name(uint32_t domid) const {
    auto it = published_->names.find(domid);
    return it == published_->names.end() ? "(none)" : it->second;
  }

  testing::FakeHypervisor hv_{{0}, 4};
  Logger log_{LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {})};
  boost::asio::io_context io_;
  ManualScheduler scheduler_;
  std::unique_ptr<Daemon> daemon_;
  NamesPublisher* published_ = nullptr;
  uint64_t tsc_ = 1'000'000;
};

TEST_F(DaemonNamesTest, PublicationsWithNoNewDomainMakeNoLookup) {
  hv_.domain_names = {{0, "Domain-0"}, {1, "web"}, {2, "db"}};
  StepSeconds(2, {0, 1, 2});
  EXPECT_EQ(Name(1), "web");
  EXPECT_EQ(Name(2), "db");
  const int lookups = hv_.name_lookups;
  EXPECT_EQ(lookups, 3);
  const int publications = published_->publications;
  StepSeconds(10, {0, 1, 2});
  EXPECT_GE(published_->publications, publications + 9);
  EXPECT_EQ(hv_.name_lookups, lookups) << "a publication with no new domain looked names up";
  EXPECT_EQ(hv_.list_domains_calls, 0) << "every domain listed at a publication";
}

// A domain created while the daemon runs (it was in no earlier list): named once its records
// are accounted, even when the toolstack writes its name a while after it appears.
TEST_F(DaemonNamesTest, ADomainCreatedLaterIsNamedEvenWhenItsNameComesLate) {
  StepSeconds(2, {0});
  const int before = hv_.name_lookups;
  StepSeconds(5, {0, 9});  // domain 9 has no name in xenstore yet
  EXPECT_EQ(Name(9), "(none)");
  const int unnamed_lookups = hv_.name_lookups - before;
  EXPECT_GE(unnamed_lookups, 2) << "retried";
  EXPECT_LE(unnamed_lookups, 3) << "backed off (1 s, 2 s, 4 s), not once per publication";
  hv_.domain_names[9] = "late";
  StepSeconds(8, {0, 9});
  EXPECT_EQ(Name(9), "late");
  const int named_at = hv_.name_lookups;
  StepSeconds(3, {0, 9});
  EXPECT_EQ(hv_.name_lookups, named_at);
}

// Xen reuses a destroyed domain's id: the new domain shows its own name, not the old one's.
TEST_F(DaemonNamesTest, AReusedIdGetsTheNewName) {
  hv_.domain_names = {{0, "Domain-0"}, {4, "old"}};
  StepSeconds(2, {0, 4});
  EXPECT_EQ(Name(4), "old");
  hv_.Put(0, testing::MakeRecord(tracefmt::ev::kDomRem, {4, 0}, tsc_ += 1000));
  hv_.domain_names.erase(4);
  StepSeconds(2, {0});
  EXPECT_EQ(Name(4), "(none)") << "the destroyed domain's name outlived it";
  hv_.domain_names[4] = "new";
  StepSeconds(2, {0, 4});
  EXPECT_EQ(Name(4), "new");
}

}  // namespace
}  // namespace xenbaked
