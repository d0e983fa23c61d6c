// The shared-memory snapshot: layout round trip, permissions, a reader hammering a writer under
// the sequence lock, staleness with an injected clock, growth, and the errors a client shows.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "fake_host.h"
#include "xenbaked/publish/snapshot_reader.h"
#include "xenbaked/publish/snapshot_writer.h"

namespace xenbaked::publish {
namespace {

using testing::FakeHost;
using testing::TempDir;
using tracefmt::ErrorCode;

SnapshotWriterConfig Config(const std::string& path, uint32_t domains = 16) {
  return {.path = path, .domain_capacity = domains, .cpu_capacity = 8, .group = 4243};
}

TEST(Snapshot, BlockSizesAreTheDocumentedOnes) {
  // xenbaked/docs/shm-layout.md states these; a change here is a layout change to document.
  EXPECT_EQ(shm::DomainRecordBytes(), 480u);
  EXPECT_EQ(shm::DomainRecordBytesV1_0(), 456u);
  EXPECT_EQ(shm::CpuRecordBytes(), 216u);
  EXPECT_EQ(shm::HealthBytes(), 536u);
}

TEST(Snapshot, ReadsBackWhatWasPublishedWithWindowsHealthAndPermissions) {
  TempDir dir;
  FakeHost host;
  host.Advance(1);
  host.Advance(2);  // closes the 1 s window [1 s, 2 s)
  host.names[2] = "evil\u202Egnp.exe\x1b[2J";
  auto writer = SnapshotWriter::Create(Config(dir.File("shm")));
  ASSERT_TRUE(writer) << writer.error().Describe();
  ASSERT_TRUE(writer->Publish(host.View(/*monotonic_ns=*/5'000)));

  struct stat st {};
  ASSERT_EQ(::stat(dir.File("shm").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_gid, 4243u);

  auto reader =
      SnapshotReader::Open(dir.File("shm"), {.monotonic_clock = [] { return uint64_t{6'000}; }});
  ASSERT_TRUE(reader) << reader.error().Describe();
  auto snap = reader->Read();
  ASSERT_TRUE(snap) << snap.error().Describe();
  EXPECT_EQ(reader->LivenessOf(*snap), Liveness::kLive);
  EXPECT_EQ(snap->heartbeat.publish_count, 1u);
  EXPECT_EQ(snap->heartbeat.publish_monotonic_ns, 5'000u);
  EXPECT_EQ(snap->heartbeat.period_ns, 1'000'000'000u);
  EXPECT_EQ(snap->totals_at_ns, 2'000'000'000u);
  EXPECT_EQ(snap->window_length_ns[0], 1'000'000'000u);
  EXPECT_EQ(snap->window_end_ns[0], 2'000'000'000u);
  EXPECT_EQ(snap->window_length_ns[1], 10'000'000'000u);
  EXPECT_EQ(snap->window_end_ns[1], 0u);  // no 10 s window closed yet

  ASSERT_EQ(snap->domains.size(), 3u);
  const shm::DomainEntry& d1 = snap->domains[1];
  EXPECT_EQ(d1.domid, 1u);
  EXPECT_EQ(d1.name, "guest1");
  EXPECT_EQ(d1.vcpus, 2u);
  EXPECT_EQ(d1.totals, DomainCounters::Of(testing::DomainAt(1, 2)));
  EXPECT_TRUE(d1.in_window[0]);
  EXPECT_FALSE(d1.in_window[1]);
  EXPECT_EQ(d1.windows[0].running_ns, 1'000'000u);  // 2 ms − 1 ms
  EXPECT_EQ(d1.slice_max_ns, 30'000'000u);
  EXPECT_EQ(d1.unknown_ns, 250'000u);
  EXPECT_EQ(d1.window_unknown_ns[0], 125'000u);  // the window's, not the total
  EXPECT_EQ(d1.window_unknown_ns[1], 0u);        // no 10 s window closed yet
  EXPECT_EQ(snap->domains[0].name, "Domain-0");
  EXPECT_EQ(snap->domains[2].name, "evil?gnp.exe?[2J");

  ASSERT_EQ(snap->cpus.size(), 2u);
  EXPECT_TRUE(snap->cpus[1].has_accounting);
  EXPECT_TRUE(snap->cpus[1].has_buffer);
  EXPECT_EQ(snap->cpus[1].fill_bytes, 1024u);
  EXPECT_EQ(snap->cpus[1].totals.capture_ratio_ppm, 999'000u);
  EXPECT_EQ(snap->cpus[1].windows[0].elapsed_ns, 1'000'000'000u);
  EXPECT_EQ(snap->health.backend, "simulated");
  EXPECT_EQ(snap->health.wakes_irq, 6u);
  EXPECT_EQ(snap->health.drain_latency.buckets[15], 2u);
}

TEST(Snapshot, AReaderHammeringAWriterNeverSeesATornSnapshot) {
  TempDir dir;
  const std::string path = dir.File("shm");
  FakeHost host;
  host.Advance(1, /*domains=*/64, /*cpus=*/8);
  auto writer = SnapshotWriter::Create(Config(path, 64));
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->Publish(host.View(1)));
  SnapshotReaderOptions options;
  options.max_retries = 1'000'000;
  auto reader = SnapshotReader::Open(path, options);
  ASSERT_TRUE(reader);

  constexpr uint64_t kPublications = 3000;
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    FakeHost h;
    h.Advance(1, 64, 8);
    for (uint64_t k = 2; k <= kPublications; ++k) {
      // Every counter of every domain is a function of k; so is the publish count (k).
      for (DomainTotals& d : h.totals.domains) d = testing::DomainAt(d.domid, k);
      h.health.records = k;
      (void)writer->Publish(h.View(k));
    }
    done = true;
  });
  uint64_t reads = 0;
  uint64_t retried = 0;
  uint64_t last_seen = 0;
  while (!done || reads == 0) {
    auto snap = reader->Read();
    ASSERT_TRUE(snap) << snap.error().Describe();
    ++reads;
    retried += reader->last_retries() > 0;
    const uint64_t k = snap->heartbeat.publish_count;
    ASSERT_GE(k, last_seen);
    last_seen = k;
    ASSERT_EQ(snap->heartbeat.publish_monotonic_ns, k);
    ASSERT_EQ(snap->domains.size(), 64u);
    if (k > 1) {
      ASSERT_EQ(snap->health.records, k);
    }
    for (const shm::DomainEntry& d : snap->domains) {
      ASSERT_EQ(d.totals, DomainCounters::Of(testing::DomainAt(d.domid, k)))
          << "domain " << d.domid << " torn at publication " << k;
    }
  }
  publisher.join();
  EXPECT_GT(reads, 0u);
  RecordProperty("reads", std::to_string(reads));
  RecordProperty("reads_that_retried", std::to_string(retried));
}

TEST(Snapshot, LivenessFollowsTheHeartbeatOnAnInjectedClock) {
  TempDir dir;
  FakeHost host;
  host.Advance(1);
  auto writer = SnapshotWriter::Create(Config(dir.File("shm")));
  ASSERT_TRUE(writer);
  uint64_t now = 0;
  auto reader = SnapshotReader::Open(
      dir.File("shm"), {.stale_periods = 3, .monotonic_clock = [&now] { return now; }});
  ASSERT_TRUE(reader);
  auto never = reader->Read();
  ASSERT_TRUE(never);
  EXPECT_EQ(reader->LivenessOf(*never), Liveness::kStale);  // created, never published

  ASSERT_TRUE(writer->Publish(host.View(/*monotonic_ns=*/10'000'000'000)));
  auto snap = reader->Read();
  ASSERT_TRUE(snap);
  now = 13'000'000'000;  // three periods later: still within the allowance
  EXPECT_EQ(reader->LivenessOf(*snap), Liveness::kLive);
  now = 13'000'000'001;
  EXPECT_EQ(reader->LivenessOf(*snap), Liveness::kStale);

  writer->MarkStopped();
  auto stopped = reader->Read();
  ASSERT_TRUE(stopped);
  EXPECT_EQ(reader->LivenessOf(*stopped), Liveness::kStopped);
  EXPECT_EQ(stopped->heartbeat.publish_count, 1u);  // the last figures stay readable
}

TEST(Snapshot, TheRegionGrowsForMoreDomainsAndAnOpenReaderFollows) {
  TempDir dir;
  const std::string path = dir.File("shm");
  FakeHost host;
  host.Advance(1, /*domains=*/2);
  auto writer = SnapshotWriter::Create(Config(path, /*domains=*/2));
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->Publish(host.View(1)));
  auto reader = SnapshotReader::Open(path);
  ASSERT_TRUE(reader);
  ASSERT_EQ(reader->Read()->domains.size(), 2u);

  host.Advance(2, /*domains=*/300);
  ASSERT_TRUE(writer->Publish(host.View(2)));
  EXPECT_EQ(writer->geometry().domain_capacity, 512u);
  auto snap = reader->Read();
  ASSERT_TRUE(snap) << snap.error().Describe();
  EXPECT_EQ(snap->domains.size(), 300u);
  EXPECT_EQ(reader->geometry().domain_capacity, 512u);
  EXPECT_EQ(snap->domains[299].totals, DomainCounters::Of(testing::DomainAt(299, 2)));
}

TEST(Snapshot, AReaderFollowsARestartedDaemonToItsNewRegion) {
  TempDir dir;
  const std::string path = dir.File("shm");
  FakeHost host;
  host.Advance(1);
  auto first = SnapshotWriter::Create(Config(path));
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Publish(host.View(1)));
  auto reader = SnapshotReader::Open(path);
  ASSERT_TRUE(reader);
  first->MarkStopped();
  auto second = SnapshotWriter::Create(Config(path));
  ASSERT_TRUE(second);
  host.Advance(5);
  ASSERT_TRUE(second->Publish(host.View(5)));
  auto snap = reader->Read();
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->totals_at_ns, 5'000'000'000u);
}

// A region image as the writer makes it, for layout checks at the byte level.
struct RegionImage {
  shm::Geometry geometry;
  std::vector<std::byte> bytes;
};

RegionImage Encode(const FakeHost& host) {
  RegionImage r;
  r.geometry = shm::MakeGeometry(4, 2);
  r.bytes.resize(r.geometry.region_bytes);
  shm::EncodeStaticHeader(r.geometry, r.bytes);
  shm::EncodeDynamic(host.View(1), shm::RegionState::kRunning, 1, r.geometry, r.bytes);
  return r;
}

uint64_t U64At(const std::vector<std::byte>& bytes, size_t offset) {
  uint64_t v = 0;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

TEST(SnapshotLayout, UnknownTimeIsAppendedWhereA1_0ReaderNeverLooks) {
  FakeHost host;
  host.Advance(1);
  host.Advance(2);
  const RegionImage image = Encode(host);
  uint16_t minor = 0;
  std::memcpy(&minor, image.bytes.data() + shm::kOffMinor, 2);
  EXPECT_EQ(minor, 1u);
  // The offsets of shm-layout.md, by hand: a 1.0 reader walking records at the header's stride
  // finds every 1.0 field where it always was.
  const size_t d1 = image.geometry.domains_offset + image.geometry.domain_bytes;
  EXPECT_EQ(image.geometry.domain_bytes, 480u);
  EXPECT_EQ(U64At(image.bytes, d1) & 0xffff'ffff, 1u);   // domid
  EXPECT_EQ(U64At(image.bytes, d1 + 120), 2'000'000u);   // totals running_ns
  EXPECT_EQ(U64At(image.bytes, d1 + 232), 1'000'000u);   // slot 0 running_ns
  EXPECT_EQ(U64At(image.bytes, d1 + 344 + 13 * 8), 0u);  // slot 1 lost_records (no window yet)
  EXPECT_EQ(U64At(image.bytes, d1 + 456), 250'000u);     // 1.1: unknown since first seen
  EXPECT_EQ(U64At(image.bytes, d1 + 464), 125'000u);     // 1.1: in slot 0
  EXPECT_EQ(U64At(image.bytes, d1 + 472), 0u);           // 1.1: in slot 1
}

TEST(SnapshotLayout, A1_0RegionReadsWithUnknownTimeZero) {
  FakeHost host;
  host.Advance(1);
  host.Advance(2);
  const RegionImage now = Encode(host);
  // The same publication in the 1.0 layout: domain records 24 bytes shorter.
  shm::Geometry old = now.geometry;
  old.domain_bytes = 456;
  old.cpus_offset = old.domains_offset + old.domain_bytes * old.domain_capacity;
  old.region_bytes = uint64_t{old.cpus_offset} + uint64_t{old.cpu_bytes} * old.cpu_capacity;
  std::vector<std::byte> bytes(old.region_bytes);
  std::memcpy(bytes.data(), now.bytes.data(), now.geometry.domains_offset);
  for (size_t i = 0; i < old.domain_capacity; ++i) {
    std::memcpy(bytes.data() + old.domains_offset + i * old.domain_bytes,
                now.bytes.data() + now.geometry.domains_offset + i * now.geometry.domain_bytes,
                old.domain_bytes);
  }
  std::memcpy(bytes.data() + old.cpus_offset, now.bytes.data() + now.geometry.cpus_offset,
              size_t{old.cpu_bytes} * old.cpu_capacity);
  shm::EncodeStaticHeader(old, bytes);
  const uint16_t minor_1_0 = 0;
  std::memcpy(bytes.data() + shm::kOffMinor, &minor_1_0, 2);

  auto geometry = shm::ParseStaticHeader(bytes);
  ASSERT_TRUE(geometry) << geometry.error().Describe();
  auto snap = shm::DecodeRegion(bytes, *geometry);
  ASSERT_TRUE(snap) << snap.error().Describe();
  auto expected = shm::DecodeRegion(now.bytes, now.geometry);
  ASSERT_TRUE(expected);
  ASSERT_EQ(snap->domains.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    shm::DomainEntry without_unknown = expected->domains[i];
    without_unknown.unknown_ns = 0;
    without_unknown.window_unknown_ns = {};
    EXPECT_EQ(snap->domains[i], without_unknown) << i;
  }
  EXPECT_EQ(snap->cpus, expected->cpus);
  EXPECT_EQ(snap->minor, 0u);
}

// Rewrites bytes of a region file as a damaged or foreign writer would have left it.
void Patch(const std::string& path, size_t offset, const void* bytes, size_t n) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes, n, off_t(offset)), ssize_t(n));
  ::close(fd);
}

class SnapshotErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.Advance(1);
    auto writer = SnapshotWriter::Create(Config(path_));
    ASSERT_TRUE(writer);
    writer_ = std::make_unique<SnapshotWriter>(std::move(*writer));
    ASSERT_TRUE(writer_->Publish(host_.View(1)));
  }
  tracefmt::Error OpenError() {
    auto reader = SnapshotReader::Open(path_);
    EXPECT_FALSE(reader);
    return reader ? tracefmt::Error{} : reader.error();
  }
  TempDir dir_;
  std::string path_ = dir_.File("shm");
  FakeHost host_;
  std::unique_ptr<SnapshotWriter> writer_;
};

TEST_F(SnapshotErrors, AMissingRegionSaysTheDaemonIsNotRunning) {
  auto reader = SnapshotReader::Open(dir_.File("absent"));
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, ErrorCode::kNotFound);
  EXPECT_NE(reader.error().Describe().find("is xenbaked running?"), std::string::npos);
}

TEST_F(SnapshotErrors, AFifoIsRefusedWithoutWaitingForAWriter) {
  // `xenbake-top --shm FIFO` waited in open() for a writer, forever. A watchdog stands in for
  // that writer so a regression fails the test instead of hanging it.
  const std::string fifo = dir_.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::atomic<bool> done{false};
  std::atomic<bool> released{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 200 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (done) return;
    released = true;
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
  });
  auto reader = SnapshotReader::Open(fifo);
  done = true;
  watchdog.join();
  EXPECT_FALSE(released) << "the open waited for a writer";
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(SnapshotErrors, AnotherMajorVersionIsRejected) {
  const uint16_t major = shm::kMajor + 1;
  Patch(path_, shm::kOffMajor, &major, sizeof major);
  tracefmt::Error e = OpenError();
  EXPECT_EQ(e.code, ErrorCode::kUnsupported);
  EXPECT_NE(e.Describe().find("version 2.1"), std::string::npos);
}

TEST_F(SnapshotErrors, RecordsSmallerThanThisReaderKnowsAreRejected) {
  const uint32_t domain_bytes = uint32_t(shm::DomainRecordBytesV1_0() - 8);
  Patch(path_, shm::kOffDomainBytes, &domain_bytes, sizeof domain_bytes);
  EXPECT_EQ(OpenError().code, ErrorCode::kUnsupported);
}

TEST_F(SnapshotErrors, ATruncatedRegionIsReportedAsTruncated) {
  ASSERT_EQ(::truncate(path_.c_str(), off_t(writer_->geometry().region_bytes / 2)), 0);
  tracefmt::Error half = OpenError();
  EXPECT_EQ(half.code, ErrorCode::kTruncated);
  EXPECT_NE(half.Describe().find("header says"), std::string::npos);
  ASSERT_EQ(::truncate(path_.c_str(), 100), 0);
  EXPECT_EQ(OpenError().code, ErrorCode::kTruncated);
}

TEST_F(SnapshotErrors, AForeignFileIsNotASnapshot) {
  Patch(path_, 0, "NOTXBAKE", 8);
  EXPECT_EQ(OpenError().code, ErrorCode::kCorrupt);
}

TEST_F(SnapshotErrors, AWriterStuckMidPublicationIsReportedNotWaitedForForever) {
  const uint64_t odd = 12345;
  Patch(path_, shm::kOffSeq, &odd, sizeof odd);
  SnapshotReaderOptions options;
  options.max_retries = 50;
  auto reader = SnapshotReader::Open(path_, options);
  ASSERT_TRUE(reader);
  auto snap = reader->Read();
  ASSERT_FALSE(snap);
  EXPECT_NE(snap.error().Describe().find("hung"), std::string::npos);
}

}  // namespace
}  // namespace xenbaked::publish
