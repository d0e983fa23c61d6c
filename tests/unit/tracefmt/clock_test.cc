#include "tracefmt/clock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "test_util.h"

namespace tracefmt {
namespace {

TEST(TscClockTest, ConvertsAtTheCapturedHostsFrequency) {
  const TscClock clock(/*cpu_khz=*/2596120);
  EXPECT_EQ(clock.cpu_khz(), 2596120u);
  EXPECT_NEAR(static_cast<double>(clock.ToNs(2596120000ull)), 1e9, 1.0);
  EXPECT_NEAR(static_cast<double>(clock.ToNs(12974894965ull)), 4997802476.0, 2.0);
  EXPECT_EQ(clock.ToNs(0), 0u);
  EXPECT_EQ(clock.ToTicks(1000000000ull), 2596120000ull);
}

TEST(TscClockTest, LargeTscDoesNotOverflow) {
  const TscClock clock(/*cpu_khz=*/1000000);  // 1 GHz: ns == ticks
  const uint64_t ten_years_ns = 10ull * 365 * 24 * 3600 * 1000000000ull;
  EXPECT_NEAR(static_cast<double>(clock.ToNs(ten_years_ns)), static_cast<double>(ten_years_ns),
              1.0);
}

TEST(TscClockTest, ZeroFrequencyDoesNotDivideByZero) {
  const TscClock clock(0);
  EXPECT_EQ(clock.cpu_khz(), 1u);
}

class SidecarTest : public ::testing::Test {
 protected:
  void TearDown() override { std::remove(SidecarPath(capture_).c_str()); }
  void WriteSidecar(const std::string& text) { std::ofstream(SidecarPath(capture_)) << text; }
  const std::string capture_ = testing::TempPath("capture.bin");
};

TEST_F(SidecarTest, RoundTrips) {
  CaptureMeta meta;
  meta.cpu_khz = 2596120;
  meta.tbuf_pages = 32;
  meta.event_mask = 0x0002f000;
  meta.producer = "xenbaked 0.1.0";
  ASSERT_TRUE(WriteCaptureMeta(capture_, meta).ok());
  EXPECT_EQ(SidecarPath(capture_), capture_ + ".meta");
  Result<CaptureMeta> got = ReadCaptureMeta(capture_);
  ASSERT_TRUE(got.ok()) << got.error().Describe();
  EXPECT_EQ(got->cpu_khz, 2596120u);
  EXPECT_EQ(got->tbuf_pages, 32u);
  EXPECT_EQ(got->event_mask, 0x0002f000u);
  EXPECT_EQ(got->producer, "xenbaked 0.1.0");
}

TEST_F(SidecarTest, MissingIsNotFound) {
  Result<CaptureMeta> got = ReadCaptureMeta(capture_);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
}

TEST_F(SidecarTest, MalformedValueIsCorruptWithItsLineOffset) {
  WriteSidecar("# comment\ncpu_khz fast\n");
  Result<CaptureMeta> got = ReadCaptureMeta(capture_);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(got.error().offset, 10u);
}

TEST_F(SidecarTest, UnknownKeysAreIgnoredButCpuKhzIsRequired) {
  WriteSidecar("future_key 1\ncpu_khz 0x10\n");
  Result<CaptureMeta> got = ReadCaptureMeta(capture_);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->cpu_khz, 16u);
  WriteSidecar("tbuf_pages 32\n");
  EXPECT_EQ(ReadCaptureMeta(capture_).error().code, ErrorCode::kCorrupt);
}

TEST_F(SidecarTest, OptionWinsOverSidecarWhichWinsOverNothing) {
  Result<uint64_t> none = ResolveCpuKhz(0, capture_);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("--cpu-khz"), std::string::npos);
  WriteSidecar("cpu_khz 2000000\n");
  EXPECT_EQ(*ResolveCpuKhz(0, capture_), 2000000u);
  EXPECT_EQ(*ResolveCpuKhz(3000000, capture_), 3000000u);
}

CaptureMeta MetaAt1MHz() {
  CaptureMeta meta;
  meta.cpu_khz = 1000;
  return meta;
}

// As root, a link planted at the sidecar's path (or at the temporary name it used to be written
// under) must not redirect the write: the sidecar replaces the link, the target is untouched.
TEST_F(SidecarTest, ALinkAtTheSidecarPathIsReplacedNotWrittenThrough) {
  const std::string victim = testing::TempPath("sidecar-victim");
  std::ofstream(victim) << "precious";
  const std::string sidecar = SidecarPath(capture_);
  std::remove(sidecar.c_str());
  std::remove((sidecar + ".tmp").c_str());
  ASSERT_EQ(::symlink(victim.c_str(), sidecar.c_str()), 0);
  ASSERT_EQ(::symlink(victim.c_str(), (sidecar + ".tmp").c_str()), 0);
  ASSERT_TRUE(WriteCaptureMeta(capture_, MetaAt1MHz()).ok());
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  struct stat st {};
  ASSERT_EQ(::lstat(sidecar.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  std::remove((sidecar + ".tmp").c_str());
  std::remove(victim.c_str());
}

// The sidecar has the capture's mode, 0640, not whatever the umask lets through.
TEST_F(SidecarTest, TheSidecarIsMode0640WhateverTheUmask) {
  const mode_t old_umask = ::umask(0);
  const Status written = WriteCaptureMeta(capture_, MetaAt1MHz());
  ::umask(old_umask);
  ASSERT_TRUE(written.ok());
  struct stat st {};
  ASSERT_EQ(::stat(SidecarPath(capture_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

}  // namespace
}  // namespace tracefmt
