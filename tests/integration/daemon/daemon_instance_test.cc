// The installed-shape xenbaked binary on its embedded simulator: one daemon per set of paths (a
// second one with the same socket, snapshot and log stops with a clear message and touches
// nothing of the first's), and options that used to hang it (a window length that wrapped in
// nanoseconds, a simulator speed it could not keep up with) are refused or run and stop on time.
// Every wait is bounded: a daemon still running at its deadline is killed and the test fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../unit/publish/fake_host.h"

namespace {

using xenbaked::publish::testing::TempDir;

// Runs xenbaked with `args`, stderr to `stderr_path`.
pid_t StartDaemon(const std::vector<std::string>& args, const std::string& stderr_path) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (err >= 0) ::dup2(err, STDERR_FILENO);
  std::vector<std::string> all = {XENBAKED_BIN, "--backend", "simulate", "--quiet"};
  // No snapshot unless the test names one: the default, /dev/shm/xenbaked, is the host's.
  if (std::find(args.begin(), args.end(), "--shm-name") == args.end())
    all.insert(all.end(), {"--shm-name", ""});
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (const std::string& a : all) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// The exit status of `pid` if it ends within `seconds`; otherwise it is killed and nullopt.
// Waiting on another process, not a timing assertion: the deadline is ten times what it needs.
std::optional<int> AwaitExit(pid_t pid, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return std::nullopt;
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool CanConnect(const std::string& socket_path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(DaemonInstances, ASecondDaemonOnTheSamePathsStopsAndTouchesNothing) {
  TempDir dir;
  const std::string socket = dir.File("run/api.sock");
  const std::string shm_name = "xenbaked-instance-test-" + std::to_string(::getpid());
  const std::string snapshot = "/dev/shm/" + shm_name;
  const std::vector<std::string> paths = {"--socket",  socket,          "--shm-name",    shm_name,
                                          "--log-dir", dir.File("log"), "--interval-ms", "50"};
  std::vector<std::string> first_args = paths;
  first_args.insert(first_args.end(), {"--duration", "60"});
  const pid_t first = StartDaemon(first_args, dir.File("first.err"));
  ASSERT_GT(first, 0);
  // Up when its socket answers (bounded by the first's --duration and the loop's count).
  bool up = false;
  for (int i = 0; i < 1500 && !up; ++i) {
    up = CanConnect(socket) && InodeOf(snapshot) != 0;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(up) << Contents(dir.File("first.err"));
  const ino_t socket_inode = InodeOf(socket);
  const ino_t snapshot_inode = InodeOf(snapshot);

  std::vector<std::string> second_args = paths;
  second_args.insert(second_args.end(), {"--duration", "1"});
  const pid_t second = StartDaemon(second_args, dir.File("second.err"));
  const std::optional<int> status = AwaitExit(second, 30);
  ASSERT_TRUE(status) << "the second daemon did not stop";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status;
  const std::string said = Contents(dir.File("second.err"));
  EXPECT_NE(said.find("another xenbaked (pid " + std::to_string(first) + ") is using"),
            std::string::npos)
      << said;

  // The first daemon's socket and snapshot are the ones it made, and it still answers.
  EXPECT_EQ(InodeOf(socket), socket_inode);
  EXPECT_EQ(InodeOf(snapshot), snapshot_inode);
  EXPECT_TRUE(CanConnect(socket));

  ASSERT_EQ(::kill(first, SIGTERM), 0);
  const std::optional<int> first_status = AwaitExit(first, 30);
  ASSERT_TRUE(first_status) << "the first daemon did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*first_status) && WEXITSTATUS(*first_status) == 0)
      << Contents(dir.File("first.err"));
  ::unlink(snapshot.c_str());
}

// Runs the daemon with `args` to its end (bounded) and checks its exit status.
void ExpectExitStatus(const std::vector<std::string>& args, int expected) {
  TempDir dir;
  const pid_t pid = StartDaemon(args, dir.File("err"));
  const std::optional<int> status = AwaitExit(pid, 30);
  ASSERT_TRUE(status) << "hung: " << Contents(dir.File("err"));
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == expected)
      << *status << ": " << Contents(dir.File("err"));
}

TEST(DaemonOptionsThatHung, AWindowLengthThatWrappedIsRefusedAtOnce) {
  // 18446744074 s × 1e9 wrapped: the loop spun, ignoring SIGTERM and --duration.
  ExpectExitStatus({"--windows", "18446744074", "--duration", "1"}, 2);
}

TEST(DaemonOptionsThatHung, TheLongestWindowAndTheFastestSimulatorStopOnTime) {
  ExpectExitStatus({"--windows", "1,604800", "--sim-speed", "100", "--duration", "2"}, 0);
}

// A simulated host bigger than the simulator can run at the speed asked: each step used to grow
// with the backlog while holding the host's lock, so the drain starved and the final Stop waited
// for the step (a 2 s run took 54 s to stop on a busy 2-core machine). Simulated time now falls
// behind instead; the run stops about on time (the deadline is ten times that).
TEST(DaemonOptionsThatHung, ASimulatorThatCannotKeepUpStillStopsOnTime) {
  ExpectExitStatus({"--sim-speed", "100", "--sim-domains", "2000", "--sim-vcpus", "8", "--sim-cpus",
                    "64", "--duration", "2"},
                   0);
}

// Past sun_path's 108 bytes, binding threw and the daemon aborted.
TEST(DaemonOptionsThatHung, ASocketPathTooLongIsRefusedNotAnAbort) {
  ExpectExitStatus({"--socket", "/tmp/" + std::string(120, 's'), "--duration", "1"}, 2);
}

}  // namespace
