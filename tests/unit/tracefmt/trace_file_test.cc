#include "tracefmt/trace_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "test_util.h"
#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "tracefmt/testing/trace_builder.h"

namespace tracefmt {
namespace {

using testing::Rec;
using testing::TraceBuilder;

std::vector<Chunk> AllChunks(TraceFileReader& reader) {
  std::vector<Chunk> chunks;
  Chunk c;
  while (reader.Next(c)) chunks.push_back(c);
  return chunks;
}

TEST(ParseChunkTest, ReadsHeader) {
  TraceBuilder t;
  t.Chunk(3, {Rec(ev::kWake, 1, {0, 1})});
  Result<Chunk> c = ParseChunk(t.bytes(), 0);
  ASSERT_TRUE(c.ok()) << c.error().Describe();
  EXPECT_EQ(c->cpu, 3u);
  EXPECT_EQ(c->file_offset, 0u);
  EXPECT_EQ(c->data_offset(), kChunkHeaderBytes);
  EXPECT_EQ(c->bytes.size(), 20u);
}

TEST(ParseChunkTest, RejectsWhatIsNotAChunkHeader) {
  std::vector<std::byte> junk(12, std::byte{0x41});
  Result<Chunk> c = ParseChunk(junk, 0);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(c.error().offset, 0u);
  EXPECT_NE(c.error().Describe().find("CPU_CHANGE"), std::string::npos);
}

TEST(ParseChunkTest, ShortHeaderIsTruncated) {
  TraceBuilder t;
  t.Chunk(0, {}).Truncate(4);
  Result<Chunk> c = ParseChunk(t.bytes(), 0);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kTruncated);
}

TEST(ParseChunkTest, ImplausibleCpuIsCorrupt) {
  TraceBuilder t;
  t.Chunk(0x12345678, {});
  Result<Chunk> c = ParseChunk(t.bytes(), 0);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kCorrupt);
}

TEST(TraceFileReaderTest, DeliversChunksInOrder) {
  TraceBuilder t;
  t.Chunk(0, {Rec(ev::kWake, 1, {0, 1})}).Chunk(1, {}).Chunk(0, {Rec(ev::kBlock, 2, {0, 1})});
  TraceFileReader r = TraceFileReader::FromBytes(t.bytes());
  std::vector<Chunk> chunks = AllChunks(r);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[1].cpu, 1u);
  EXPECT_TRUE(chunks[1].bytes.empty());
  EXPECT_EQ(chunks[2].file_offset, 12u + 20u + 12u);
  EXPECT_FALSE(r.error());
  r.Rewind();
  EXPECT_EQ(AllChunks(r).size(), 3u);
}

TEST(TraceFileReaderTest, WindowLargerThanTheFileDeliversWhatIsThereThenReports) {
  TraceBuilder t;
  const auto data = testing::EncodeAll({Rec(ev::kWake, 1, {0, 1})});
  t.Chunk(0, {Rec(ev::kWake, 0, {0, 1})}).RawChunk(1, data, 1000);
  TraceFileReader r = TraceFileReader::FromBytes(t.bytes());
  std::vector<Chunk> chunks = AllChunks(r);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1].bytes.size(), 20u) << "the part that exists is delivered";
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->code, ErrorCode::kTruncated);
  EXPECT_EQ(r.error()->offset, 32u) << "offset of the damaged chunk's header";
  EXPECT_NE(r.error()->Describe().find("at byte 32"), std::string::npos);
}

TEST(TraceFileReaderTest, GarbageAfterGoodChunksStopsWithOffset) {
  TraceBuilder t;
  std::vector<std::byte> garbage(16, std::byte{0xee});
  t.Chunk(0, {Rec(ev::kWake, 0, {0, 1})}).Raw(garbage);
  TraceFileReader r = TraceFileReader::FromBytes(t.bytes());
  EXPECT_EQ(AllChunks(r).size(), 1u);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->code, ErrorCode::kCorrupt);
  EXPECT_EQ(r.error()->offset, 32u);
}

// PeekChunk reads a header through the file descriptor (no page of the mapping touched): it must
// give what Next gives, for whole, cut-short and damaged chunks, from a file and from bytes.
TEST(TraceFileReaderTest, PeekChunkSeesWhatNextSees) {
  TraceBuilder t;
  const auto data = testing::EncodeAll({Rec(ev::kWake, 1, {0, 1})});
  t.Chunk(0, {Rec(ev::kWake, 0, {0, 1})}).Chunk(5, {}).RawChunk(1, data, 1000);
  TraceBuilder garbage;
  garbage.Chunk(2, {Rec(ev::kBlock, 3, {4})}).Raw(std::vector<std::byte>(16, std::byte{0xee}));
  for (const TraceBuilder* built : {&t, &garbage}) {
    for (size_t cut : {built->bytes().size(), built->bytes().size() - 3, size_t{40}, size_t{5}}) {
      const std::vector<std::byte> bytes(built->bytes().begin(), built->bytes().begin() + cut);
      const std::string path = testing::TempPath("peek.bin");
      {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
        ::close(fd);
      }
      auto opened = TraceFileReader::Open(path);
      ASSERT_TRUE(opened.ok());
      TraceFileReader from_bytes = TraceFileReader::FromBytes(bytes);
      for (TraceFileReader* r : {&*opened, &from_bytes}) {
        TraceFileReader walker = TraceFileReader::FromBytes(r->bytes());
        uint64_t offset = 0;
        Chunk next;
        for (;;) {
          const bool more = walker.Next(next);
          Chunk peeked;
          bool usable = false;
          const std::optional<Error> damage = r->PeekChunk(offset, peeked, usable);
          ASSERT_EQ(usable, more) << "cut " << cut << " offset " << offset;
          ASSERT_EQ(damage.has_value(), walker.error().has_value()) << "offset " << offset;
          if (damage) {
            EXPECT_EQ(damage->code, walker.error()->code);
            EXPECT_EQ(damage->offset, walker.error()->offset);
          }
          if (!more) break;
          EXPECT_EQ(peeked.cpu, next.cpu);
          EXPECT_EQ(peeked.file_offset, next.file_offset);
          EXPECT_EQ(peeked.bytes.data(),
                    next.bytes.data() - walker.bytes().data() + r->bytes().data());
          EXPECT_EQ(peeked.bytes.size(), next.bytes.size());
          if (damage) break;
          offset = next.data_offset() + next.bytes.size();
        }
      }
      std::remove(path.c_str());
    }
  }
}

TEST(TraceFileReaderTest, EmptyFileIsReported) {
  TraceFileReader r = TraceFileReader::FromBytes({});
  Chunk c;
  EXPECT_FALSE(r.Next(c));
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->offset, 0u);
  EXPECT_NE(r.error()->message.find("empty"), std::string::npos);
}

TEST(TraceFileReaderTest, OpenReportsMissingFileAndDirectory) {
  auto missing = TraceFileReader::Open("/nonexistent/trace.bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kIo);
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  auto dir = TraceFileReader::Open("/");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, ErrorCode::kInvalidArgument);
}

// Reading a real capture and writing every chunk back gives the identical bytes: once with each
// window in one write, once split in two at a record boundary (the way a wrapped ring is written).
TEST(TraceFileRoundTripTest, RealCapturesAreRewrittenByteForByte) {
  for (const std::string& name : testing::RealCaptures()) {
    const std::string path = testing::SharedCapture(name);
    SKIP_IF_MISSING(path);
    auto reader = TraceFileReader::Open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().Describe();
    for (bool split : {false, true}) {
      const std::string out_path = testing::TempPath(split ? "split.bin" : "whole.bin");
      auto writer = TraceFileWriter::Create(out_path);
      ASSERT_TRUE(writer.ok()) << writer.error().Describe();
      reader->Rewind();
      Chunk c;
      size_t chunks = 0;
      while (reader->Next(c)) {
        ++chunks;
        size_t cut = 0;
        if (split) {  // the first record boundary at or past the middle
          RecordCursor cur(c.bytes);
          Record rec;
          while (cur.offset() < c.bytes.size() / 2 && cur.Next(rec)) {
          }
          cut = cur.offset();
        }
        Status s = split ? writer->WriteChunk(c.cpu, c.bytes.first(cut), c.bytes.subspan(cut))
                         : writer->WriteChunk(c.cpu, c.bytes);
        ASSERT_TRUE(s.ok()) << s.error().Describe();
      }
      ASSERT_FALSE(reader->error()) << reader->error()->Describe();
      EXPECT_GT(chunks, 90u);
      EXPECT_EQ(writer->bytes_written(), reader->size());
      ASSERT_TRUE(writer->Close().ok());
      const std::vector<std::byte> original = testing::ReadFileBytes(path);
      const std::vector<std::byte> rewritten = testing::ReadFileBytes(out_path);
      ASSERT_EQ(rewritten.size(), original.size()) << name;
      EXPECT_TRUE(rewritten == original) << name << (split ? " (split writes)" : "");
      std::remove(out_path.c_str());
    }
  }
}

TEST(TraceFileWriterTest, FullDiskIsReportedWithErrno) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "/dev/full is not available";
  TraceFileWriter w = TraceFileWriter::FromFd(fd);
  const auto data = testing::EncodeAll({Rec(ev::kWake, 1, {0, 1})});
  Status s = w.WriteChunk(0, data);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kIo);
  EXPECT_EQ(s.error().sys_errno, ENOSPC);
  EXPECT_NE(s.error().Describe().find("No space left"), std::string::npos);
  ::close(fd);
}

TEST(TraceFileWriterTest, ClosedWriterRefuses) {
  auto w = TraceFileWriter::Create(testing::TempPath("closed.bin"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->Close().ok());
  EXPECT_FALSE(w->WriteChunk(0, {}).ok());
}

TEST(TraceFileWriterTest, AppendAddsChunks) {
  const std::string path = testing::TempPath("append.bin");
  const auto data = testing::EncodeAll({Rec(ev::kWake, 1, {0, 1})});
  for (bool append : {false, true}) {
    auto w = TraceFileWriter::Create(path, append);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->WriteChunk(append ? 1 : 0, data).ok());
  }
  auto r = TraceFileReader::Open(path);
  ASSERT_TRUE(r.ok());
  std::vector<Chunk> chunks = AllChunks(*r);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1].cpu, 1u);
  std::remove(path.c_str());
}

// The umask of the test process set for one scope (0: every mode bit would pass).
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

std::string ContentsOf(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// As root, a link planted at the capture path must not make the daemon write, truncate or chmod
// the file it points to: the capture replaces the link.
TEST(TraceFileWriterTest, ALinkAtThePathIsReplacedNotWrittenThrough) {
  const std::string victim = testing::TempPath("victim");
  const std::string path = testing::TempPath("linked.xt");
  std::ofstream(victim) << "precious";
  ::chmod(victim.c_str(), 0600);
  std::remove(path.c_str());
  ASSERT_EQ(::symlink(victim.c_str(), path.c_str()), 0);
  auto w = TraceFileWriter::Create(path);
  ASSERT_TRUE(w.ok()) << w.error().Describe();
  ASSERT_TRUE(w->WriteChunk(0, testing::EncodeAll({Rec(ev::kWake, 1, {0, 1})})).ok());
  EXPECT_EQ(ContentsOf(victim), "precious");
  EXPECT_EQ(ModeOf(victim) & 07777, 0600u);
  EXPECT_TRUE(S_ISREG(ModeOf(path)));
  std::remove(path.c_str());
  std::remove(victim.c_str());
}

// The capture is 0640 whatever the umask, and an old capture of another mode is replaced by a
// new 0640 file rather than truncated in place with its old mode.
TEST(TraceFileWriterTest, TheCaptureIsMode0640WhateverTheUmaskOrAnOldFile) {
  const ScopedUmask open_umask(0);
  const std::string path = testing::TempPath("modes.xt");
  std::remove(path.c_str());
  {
    auto fresh = TraceFileWriter::Create(path);
    ASSERT_TRUE(fresh.ok()) << fresh.error().Describe();
  }
  EXPECT_EQ(ModeOf(path) & 07777, 0640u);
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  {
    auto reused = TraceFileWriter::Create(path);
    ASSERT_TRUE(reused.ok()) << reused.error().Describe();
  }
  EXPECT_EQ(ModeOf(path) & 07777, 0640u);
  std::remove(path.c_str());
}

TEST(TraceFileWriterTest, AppendRefusesALink) {
  const std::string victim = testing::TempPath("append-victim");
  const std::string path = testing::TempPath("append-linked.xt");
  std::ofstream(victim) << "precious";
  std::remove(path.c_str());
  ASSERT_EQ(::symlink(victim.c_str(), path.c_str()), 0);
  EXPECT_FALSE(TraceFileWriter::Create(path, /*append=*/true).ok());
  EXPECT_EQ(ContentsOf(victim), "precious");
  std::remove(path.c_str());
  std::remove(victim.c_str());
}

// `--capture /dev/null` as root replaced the system's /dev/null with a regular file: a device,
// a FIFO or a directory at the path is refused, and nothing is created beside it.
TEST(TraceFileWriterTest, ADeviceFifoOrDirectoryAtThePathIsRefusedAndLeftAlone) {
  const std::string fifo = testing::TempPath("capture-fifo");
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string dir = testing::TempPath("capture-dir");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(std::filesystem::create_directory(dir));
  // A device of our own making, so the test never touches the system's: a copy of /dev/null's
  // numbers, made only where mknod is allowed (root); the FIFO and directory cases run anyway.
  const std::string device = testing::TempPath("capture-null");
  std::remove(device.c_str());
  const bool have_device = ::mknod(device.c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0;
  for (const std::string& path : {fifo, dir, device}) {
    if (path == device && !have_device) continue;
    const mode_t before = ModeOf(path);
    auto w = TraceFileWriter::Create(path);
    ASSERT_FALSE(w.ok()) << path;
    EXPECT_NE(w.error().Describe().find("not a regular file"), std::string::npos)
        << w.error().Describe();
    EXPECT_EQ(ModeOf(path), before) << path;
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    for (const auto& entry : std::filesystem::directory_iterator(folder))
      EXPECT_EQ(entry.path().string().find(path + ".tmp-"), std::string::npos) << entry.path();
  }
  std::remove(fifo.c_str());
  std::remove(device.c_str());
  std::filesystem::remove_all(dir);
}

// Another daemon's lock file (held with flock) is never replaced: replacing it would free the
// other daemon's paths for a second instance.
TEST(TraceFileWriterTest, AFileAnotherProcessHoldsLockedIsNotReplaced) {
  const std::string path = testing::TempPath("held.lock");
  std::remove(path.c_str());
  std::ofstream(path) << "4242\n";
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  const int holder = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(::flock(holder, LOCK_EX | LOCK_NB), 0);
  auto w = TraceFileWriter::Create(path);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().Describe().find("locked"), std::string::npos) << w.error().Describe();
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  ::close(holder);
  // Once nobody holds it, it is an ordinary old file and is replaced.
  EXPECT_TRUE(TraceFileWriter::Create(path).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tracefmt
