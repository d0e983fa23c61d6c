// Where the daemon's outputs live: directories made and owned through descriptors (a link where
// a directory is asked for is refused, the mode is exact whatever the umask), and the lock that
// keeps a second daemon off the same paths.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../publish/fake_host.h"
#include "xenbaked/instance_lock.h"
#include "xenbaked/publishers.h"

namespace xenbaked {
namespace {

using publish::testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

TEST(EnsureDirectory, MakesMissingParentsWithTheExactModeWhateverTheUmask) {
  TempDir dir;
  const mode_t old_umask = ::umask(0);
  const tracefmt::Status st = EnsureDirectory(dir.File("a/b/c"), 0750);
  ::umask(old_umask);
  ASSERT_TRUE(st) << st.error().Describe();
  for (const char* sub : {"a", "a/b", "a/b/c"}) EXPECT_EQ(ModeOf(dir.File(sub)) & 07777, 0750u);
  // Existing directories are left as they are.
  ASSERT_EQ(::chmod(dir.File("a/b/c").c_str(), 0700), 0);
  ASSERT_TRUE(EnsureDirectory(dir.File("a/b/c"), 0750));
  EXPECT_EQ(ModeOf(dir.File("a/b/c")) & 07777, 0700u);
}

// A link planted where the log directory (or the socket's) should be: chmod and chown by path
// would have changed the directory it points to.
TEST(EnsureDirectory, ALinkWhereTheDirectoryShouldBeIsRefused) {
  TempDir dir;
  const std::string elsewhere = dir.File("elsewhere");
  ASSERT_TRUE(std::filesystem::create_directory(elsewhere));
  ASSERT_EQ(::chmod(elsewhere.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), dir.File("logs").c_str()), 0);
  const tracefmt::Status st = EnsureDirectory(dir.File("logs"), 0750, /*group=*/0);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("symbolic link"), std::string::npos) << st.error().Describe();
  EXPECT_EQ(ModeOf(elsewhere) & 07777, 0755u);
  // A file under it is refused the same way.
  EXPECT_FALSE(EnsureParentDirectory(dir.File("logs/api.sock"), 0750));
}

TEST(EnsureDirectory, ALinkOnTheWayOwnedByThisUserIsFollowed) {
  TempDir dir;
  ASSERT_TRUE(std::filesystem::create_directory(dir.File("real")));
  ASSERT_EQ(::symlink(dir.File("real").c_str(), dir.File("run").c_str()), 0);
  ASSERT_TRUE(EnsureDirectory(dir.File("run/xenbaked"), 0750));
  EXPECT_TRUE(S_ISDIR(ModeOf(dir.File("real/xenbaked"))));
}

TEST(InstanceLock, ASecondHolderIsToldWhoHasIt) {
  TempDir dir;
  const std::string path = dir.File("api.sock");
  auto first = InstanceLock::Acquire(path);
  ASSERT_TRUE(first) << first.error().Describe();
  auto second = InstanceLock::Acquire(path);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("another xenbaked (pid " + std::to_string(::getpid())),
            std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find(path), std::string::npos);
  // Released with its holder (and its file removed): the next one gets it.
  first = InstanceLock::Acquire(dir.File("other"));
  ASSERT_TRUE(first);
  EXPECT_FALSE(std::filesystem::exists(path + ".lock"));
  EXPECT_TRUE(InstanceLock::Acquire(path));
}

TEST(InstanceLock, ALockFileLeftByAKilledHolderDoesNotStopTheNext) {
  TempDir dir;
  const std::string path = dir.File("snapshot");
  std::ofstream(path + ".lock") << "999999\n";
  auto lock = InstanceLock::Acquire(path);
  ASSERT_TRUE(lock) << lock.error().Describe();
  std::ifstream in(path + ".lock");
  long pid = 0;
  in >> pid;
  EXPECT_EQ(pid, ::getpid());
}

TEST(InstanceLock, ALinkAtTheLockPathIsRefused) {
  TempDir dir;
  const std::string victim = dir.File("victim");
  std::ofstream(victim) << "precious";
  ASSERT_EQ(::symlink(victim.c_str(), dir.File("out.lock").c_str()), 0);
  EXPECT_FALSE(InstanceLock::Acquire(dir.File("out")));
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
}

}  // namespace
}  // namespace xenbaked
