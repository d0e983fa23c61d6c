// xenbake-top's figures, sorting, keys and text, from hand-made snapshots; and its refusal of
// snapshots it must not show (missing, another version). The live view itself is tested under
// tmux in tests/integration/dom0-tools/top_tmux_test.sh.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "names/domain_name.h"
#include "top/snapshot_feed.h"
#include "top/top_model.h"
#include "top/top_ui.h"

namespace xenbake::top {
namespace {

namespace shm = xenbaked::publish::shm;
using xenbaked::publish::Liveness;

constexpr uint64_t kSecond = 1'000'000'000;

shm::DomainEntry Domain(uint32_t domid, std::string name, uint64_t running_ns, uint64_t runnable_ns,
                        uint64_t blocked_ns) {
  shm::DomainEntry d;
  d.domid = domid;
  d.vcpus = 2;
  d.name = std::move(name);
  d.in_window = {true, true};
  for (auto& w : d.windows) {
    w.running_ns = running_ns;
    w.runnable_ns = runnable_ns;
    w.blocked_ns = blocked_ns;
    w.dispatches = 50;
    w.run_slices = 4;
    w.slice_sum_ns = 4'000'000;
    w.io_records = 10;
  }
  // The 10 s window holds ten times as much.
  d.windows[1].running_ns *= 10;
  d.windows[1].runnable_ns *= 10;
  d.windows[1].blocked_ns *= 10;
  return d;
}

shm::Snapshot Sample() {
  shm::Snapshot s;
  s.window_length_ns = {kSecond, 10 * kSecond};
  s.window_start_ns = {9 * kSecond, 0};
  s.window_end_ns = {10 * kSecond, 10 * kSecond};
  s.heartbeat.publish_monotonic_ns = 100 * kSecond;
  s.health.backend = "simulated";
  s.health.wakes_irq = 7;
  s.domains.push_back(Domain(0, "Domain-0", kSecond / 10, 0, 2 * kSecond - kSecond / 10));
  s.domains.push_back(Domain(1, "web", 2 * kSecond, 0, 0));
  s.domains.push_back(Domain(2, "db", kSecond / 2, kSecond / 2, kSecond));
  shm::CpuEntry cpu;
  cpu.cpu = 0;
  cpu.has_accounting = true;
  cpu.has_buffer = true;
  cpu.buffer_bytes = 1000;
  cpu.fill_bytes = 250;
  cpu.peak_fill_bytes = 600;
  cpu.windows[0].records = 5000;
  cpu.windows[0].capture_ratio_ppm = 999'500;
  s.cpus.push_back(cpu);
  return s;
}

TEST(BuildTopModel, ComputesPercentagesOfOneCpu) {
  const TopModel m = BuildTopModel(Sample(), Liveness::kLive, 100 * kSecond);
  ASSERT_EQ(m.domains.size(), 3u);
  EXPECT_TRUE(m.warning.empty());
  const DomainRow& web = m.domains[1];
  ASSERT_TRUE(web.windows[0].has_value());
  EXPECT_DOUBLE_EQ(web.windows[0]->cpu_pct, 200.0);  // two vCPUs busy all second
  EXPECT_DOUBLE_EQ(web.windows[1]->cpu_pct, 200.0);  // the same over 10 s
  const DomainRow& db = m.domains[2];
  EXPECT_DOUBLE_EQ(db.windows[0]->wait_pct, 50.0);
  EXPECT_DOUBLE_EQ(db.windows[0]->blocked_pct, 100.0);
  EXPECT_DOUBLE_EQ(db.windows[0]->dispatches_per_s, 50.0);
  EXPECT_DOUBLE_EQ(db.windows[0]->mean_slice_us, 1000.0);
  EXPECT_DOUBLE_EQ(db.windows[0]->io_per_s, 10.0);
  EXPECT_DOUBLE_EQ(db.windows[1]->dispatches_per_s, 5.0);
  ASSERT_EQ(m.cpus.size(), 1u);
  EXPECT_DOUBLE_EQ(*m.cpus[0].capture_pct, 99.95);
  EXPECT_DOUBLE_EQ(m.cpus[0].fill_pct, 25.0);
  EXPECT_DOUBLE_EQ(m.cpus[0].records_per_s, 5000.0);
  EXPECT_DOUBLE_EQ(m.health.max_fill_pct, 25.0);
}

TEST(BuildTopModel, LeavesOutWindowsThatHaveNotClosedOrWhereTheDomainWasNotAlive) {
  shm::Snapshot s = Sample();
  s.window_start_ns[1] = s.window_end_ns[1] = 0;  // the 10 s window has not closed yet
  s.domains[2].in_window[0] = false;              // born after the last 1 s window
  const TopModel m = BuildTopModel(s, Liveness::kLive, 0);
  EXPECT_FALSE(m.domains[0].windows[1].has_value());
  EXPECT_FALSE(m.domains[2].windows[0].has_value());
  EXPECT_NE(FormatDomainRow(m.domains[2]).find("    -"), std::string::npos);
}

TEST(BuildTopModel, WarnsWhenTheDaemonIsStaleOrStopped) {
  const TopModel stale = BuildTopModel(Sample(), Liveness::kStale, 112 * kSecond);
  EXPECT_EQ(stale.state, DaemonState::kStale);
  EXPECT_NE(stale.warning.find("not published for 12.00s"), std::string::npos) << stale.warning;
  const TopModel stopped = BuildTopModel(Sample(), Liveness::kStopped, 0);
  EXPECT_NE(stopped.warning.find("stopped"), std::string::npos);
  EXPECT_EQ(ModelJson(stopped)["daemon"], "stopped");
}

// A daemon that created its snapshot but never published (it is starting, or hung before its
// first interval) has no age to give: the heartbeat's time is 0, not a publication.
TEST(BuildTopModel, SaysNoPublicationYetForASnapshotNeverPublished) {
  shm::Snapshot never = Sample();
  never.heartbeat.publish_monotonic_ns = 0;
  never.heartbeat.publish_realtime_ns = 0;
  never.heartbeat.publish_count = 0;
  const TopModel m = BuildTopModel(never, Liveness::kStale, 3280 * kSecond);
  EXPECT_EQ(m.state, DaemonState::kStale);
  EXPECT_NE(m.warning.find("no publication yet"), std::string::npos) << m.warning;
  EXPECT_EQ(m.warning.find("not published for"), std::string::npos) << m.warning;
}

TEST(SortDomains, SortsByTheChosenColumnThenId) {
  TopModel m = BuildTopModel(Sample(), Liveness::kLive, 0);
  SortDomains(m.domains, SortKey::kCpu, /*descending=*/true);
  EXPECT_EQ(m.domains[0].domid, 1u);
  EXPECT_EQ(m.domains[1].domid, 2u);
  SortDomains(m.domains, SortKey::kWait, /*descending=*/true);
  EXPECT_EQ(m.domains[0].domid, 2u);
  SortDomains(m.domains, SortKey::kName, /*descending=*/false);
  EXPECT_EQ(m.domains[0].label, "Domain-0");
  EXPECT_EQ(m.domains[1].label, "db");
  SortDomains(m.domains, SortKey::kId, /*descending=*/false);
  EXPECT_EQ(m.domains[2].domid, 2u);
}

TEST(SortDomains, PutsDomainsWithoutFiguresLast) {
  shm::Snapshot s = Sample();
  s.domains[1].in_window = {false, false};
  TopModel m = BuildTopModel(s, Liveness::kLive, 0);
  SortDomains(m.domains, SortKey::kCpu, /*descending=*/true);
  EXPECT_EQ(m.domains.back().domid, 1u);
}

TEST(FormatDomainRow, ShowsTheIdAndASanitisedName) {
  shm::Snapshot s = Sample();
  s.domains[1].name = "Domain-0\x1b[2J\xe2\x80\xae";
  const TopModel m = BuildTopModel(s, Liveness::kLive, 0);
  const std::string row = FormatDomainRow(m.domains[1]);
  EXPECT_EQ(row.find('\x1b'), std::string::npos);
  EXPECT_NE(row.find("Domain-0?[2J?"), std::string::npos) << row;
  EXPECT_EQ(row.substr(0, 6), "    1 ");  // its own id, never mistaken for dom0
  EXPECT_EQ(DisplayWidth(row), DisplayWidth(FormatDomainHeader()));
}

TEST(FormatDomainRow, FlagsADomainWithUnknownTimeInTheNewestWindow) {
  shm::Snapshot s = Sample();
  s.domains[2].window_unknown_ns = {kSecond / 4, 0};  // a loss gap in the 1 s window
  s.domains[0].window_unknown_ns = {0, kSecond};      // only in the 10 s window: not current
  const TopModel m = BuildTopModel(s, Liveness::kLive, 0);
  ASSERT_TRUE(m.domains[2].windows[0]);
  EXPECT_DOUBLE_EQ(m.domains[2].windows[0]->unknown_pct, 25.0);
  EXPECT_DOUBLE_EQ(m.domains[0].windows[1]->unknown_pct, 10.0);
  const std::string header = FormatDomainHeader();
  const size_t vcpu = header.find("VCPU ? ");
  ASSERT_NE(vcpu, std::string::npos) << header;
  const size_t flag = vcpu + 5;  // the flag column, under the header's "?"
  const std::string flagged = FormatDomainRow(m.domains[2]);
  EXPECT_EQ(flagged.substr(flag - 1, 3), " ? ") << flagged;
  EXPECT_EQ(FormatDomainRow(m.domains[0]).substr(flag - 1, 3), "   ");
  EXPECT_EQ(FormatDomainRow(m.domains[1]).substr(flag - 1, 3), "   ");
  EXPECT_EQ(DisplayWidth(flagged), DisplayWidth(header));
  const nlohmann::json j = ModelJson(m);
  EXPECT_DOUBLE_EQ(j["domains"][2]["windows"]["1s"]["unknown_pct"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(j["domains"][1]["windows"]["1s"]["unknown_pct"].get<double>(), 0.0);
}

TEST(FormatTable, HasAWarningHealthDomainsAndCpus) {
  const std::string text = FormatTable(BuildTopModel(Sample(), Liveness::kStale, 200 * kSecond));
  EXPECT_EQ(text.rfind("WARNING: xenbaked has not published", 0), 0u) << text;
  EXPECT_NE(text.find("xenbaked simulated up"), std::string::npos);
  EXPECT_NE(text.find("CPU% 1s/10s"), std::string::npos);
  EXPECT_NE(text.find("CAPTURE%"), std::string::npos);
}

TEST(ModelJson, HoldsEveryDomainPerWindow) {
  const nlohmann::json j = ModelJson(BuildTopModel(Sample(), Liveness::kLive, 0));
  EXPECT_EQ(j["daemon"], "live");
  ASSERT_EQ(j["domains"].size(), 3u);
  EXPECT_EQ(j["domains"][1]["name"], "web");
  EXPECT_DOUBLE_EQ(j["domains"][1]["windows"]["1s"]["cpu_pct"].get<double>(), 200.0);
  EXPECT_DOUBLE_EQ(j["domains"][1]["windows"]["10s"]["cpu_pct"].get<double>(), 200.0);
  EXPECT_EQ(j["health"]["wakes_irq"], 7);
}

TEST(HandleKey, QuitsCyclesCpusAndSorts) {
  UiState ui;
  EXPECT_TRUE(HandleKey(ui, 'c', 2));
  EXPECT_EQ(ui.cpu_focus, 0);
  HandleKey(ui, 'c', 2);
  EXPECT_EQ(ui.cpu_focus, 1);
  HandleKey(ui, 'c', 2);
  EXPECT_EQ(ui.cpu_focus, -1);  // back to all CPUs
  HandleKey(ui, 's', 2);
  EXPECT_EQ(ui.sort, SortKey::kWait);
  HandleKey(ui, 'I', 2);
  EXPECT_EQ(ui.sort, SortKey::kId);
  EXPECT_FALSE(ui.descending);
  HandleKey(ui, 'r', 2);
  EXPECT_TRUE(ui.descending);
  HandleKey(ui, 't', 2);
  EXPECT_EQ(ui.sort_window, 1u);
  EXPECT_FALSE(HandleKey(ui, 'x', 2));
  EXPECT_FALSE(ui.quit);
  HandleKey(ui, 'q', 2);
  EXPECT_TRUE(ui.quit);
  EXPECT_NE(TitleLine(ui, "/dev/shm/x").find("sort: id desc (10s)"), std::string::npos);
}

TEST(SnapshotFeed, RefusesAMissingSnapshot) {
  const auto feed = SnapshotFeed::Open(testing::TempDir() + "/no-such-xenbaked-snapshot");
  ASSERT_FALSE(feed.ok());
  EXPECT_EQ(feed.error().code, tracefmt::ErrorCode::kNotFound);
  EXPECT_NE(ExplainOpenError(feed.error(), "p").find("is xenbaked running"), std::string::npos);
}

TEST(SnapshotFeed, RefusesAnotherLayoutVersion) {
  const std::string path = testing::TempDir() + "/xenbaked-snapshot-v99";
  {
    std::string region(4096, '\0');
    region.replace(0, 8, std::string("XBAKSHM\0", 8));
    region[shm::kOffMajor] = 99;  // a future major version
    std::ofstream(path, std::ios::binary) << region;
  }
  const auto feed = SnapshotFeed::Open(path);
  ASSERT_FALSE(feed.ok());
  EXPECT_EQ(feed.error().code, tracefmt::ErrorCode::kUnsupported) << feed.error().Describe();
  EXPECT_NE(ExplainOpenError(feed.error(), path).find("another xenbaked version"),
            std::string::npos);
  std::filesystem::remove(path);
}

TEST(SnapshotFeed, RefusesGarbage) {
  const std::string path = testing::TempDir() + "/xenbaked-snapshot-garbage";
  std::ofstream(path, std::ios::binary) << std::string(300, 'x');
  const auto feed = SnapshotFeed::Open(path);
  EXPECT_FALSE(feed.ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace xenbake::top
