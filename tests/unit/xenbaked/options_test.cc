// ParseOptions, the configuration file and the option checks that need the host: every value
// from the command line or the file is checked (ranges after unit conversion, a socket path that
// fits, an address), what the file cannot express is an error with its line, and options that
// would account nothing or expose the daemon are warned about.
#include "xenbaked/options.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../publish/fake_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/options_exit.h"

namespace xenbaked {
namespace {

using publish::testing::TempDir;

DaemonOptions Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "xenbaked");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

// What ParseOptions printed on stderr when it rejected `args` with exit code 2; fails the test
// when it accepted them.
std::string Rejection(const std::vector<std::string>& args) {
  ::testing::internal::CaptureStderr();
  try {
    Parse(args);
  } catch (const OptionsExit& e) {
    const std::string printed = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(e.code, 2) << printed;
    return printed;
  }
  ::testing::internal::GetCapturedStderr();
  std::string joined;
  for (const std::string& a : args) joined += a + " ";
  ADD_FAILURE() << "accepted: " << joined;
  return {};
}

// The file `text` as --config, parsed; the rejection message, or "" when it was accepted.
struct ConfigRun {
  std::string file;
  std::string Reject(const std::string& text) {
    std::ofstream(file) << text;
    return Rejection({"--config", file});
  }
  DaemonOptions Accept(const std::string& text) {
    std::ofstream(file) << text;
    return Parse({"--config", file});
  }
};

// --- Numbers whose unit conversion overflowed or that the daemon cannot keep up with

TEST(Options, WindowLengthsThatWrapInNanosecondsAreRejected) {
  // 18446744074 s × 1e9 wraps a uint64: the daemon spun on a tiny window and ignored SIGTERM.
  EXPECT_NE(Rejection({"--windows", "18446744074"}).find("--windows"), std::string::npos);
  Rejection({"--windows", "1,604801"});
  Rejection({"--windows", "0"});
  EXPECT_EQ(Parse({"--windows", "1,604800"}).windows_s, (std::vector<uint64_t>{1, 604800}));
}

TEST(Options, SimulatorSpeedIsBoundedToWhatTheSimulatorKeepsUpWith) {
  Rejection({"--sim-speed", "100000"});
  Rejection({"--sim-speed", "0"});
  Rejection({"--sim-speed", "nan"});
  EXPECT_EQ(Parse({"--sim-speed", "100"}).simulate.speed, 100.0);
  EXPECT_EQ(Parse({"--sim-speed", "0.5"}).simulate.speed, 0.5);
}

TEST(Options, DurationMustBeFiniteAndConvertible) {
  Rejection({"--duration", "1e300"});
  Rejection({"--duration", "inf"});
  Rejection({"--duration", "nan"});
  Rejection({"--duration", "-1"});
  EXPECT_EQ(Parse({"--duration", "2.5"}).duration_s, 2.5);
}

TEST(Options, RangeErrorsAreShortAndSayTheRange) {
  // CLI::Range printed DBL_MAX in full: a 300-digit number.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--sim-speed", "0"},
                                               {"--duration", "-1"},
                                               {"--pages", "0"},
                                               {"--interval-ms", "5"},
                                               {"--sim-churn", "1e9"}}) {
    const std::string message = Rejection(args);
    EXPECT_LT(message.size(), 200u) << message;
    EXPECT_NE(message.find(args[0]), std::string::npos) << message;
    EXPECT_NE(message.find("must be"), std::string::npos) << message;
  }
}

TEST(Options, ASocketPathLongerThanAUnixSocketTakesIsRejected) {
  // Past sun_path's 108 bytes, binding threw and aborted the daemon.
  const std::string long_path = "/run/" + std::string(120, 'a') + "/api.sock";
  const std::string message = Rejection({"--socket", long_path});
  EXPECT_NE(message.find("107"), std::string::npos) << message;
  const std::string fits = "/" + std::string(106, 'b');
  EXPECT_EQ(Parse({"--socket", fits}).socket_path, fits);
}

TEST(Options, SnapshotNamesAreOneNameInDevShm) {
  // "../../tmp/x" wrote the snapshot outside /dev/shm.
  for (const std::string& name : {std::string("../../tmp/x"), std::string(".."), std::string("a/b"),
                                  std::string(300, 'n'), std::string("other.lock")}) {
    const std::string message = Rejection({"--shm-name", name});
    EXPECT_NE(message.find("--shm-name"), std::string::npos) << message;
    EXPECT_LT(message.size(), 300u) << message;
  }
  EXPECT_EQ(Parse({"--shm-name", "other"}).shm_name, "other");
}

TEST(Options, TheSnapshotIsPublishedWhereXenbakeTopLooksUnlessTurnedOff) {
  EXPECT_EQ(Parse({}).shm_name, "xenbaked");          // xenbake-top's default is /dev/shm/xenbaked
  EXPECT_EQ(Parse({"--shm-name", ""}).shm_name, "");  // off
}

TEST(Options, ACaptureNamedLikeALockOrSidecarIsRefused) {
  // --capture D/api.sock.lock replaced a running daemon's lock file and freed its socket path.
  for (const char* path : {"/var/tmp/api.sock.lock", "/var/tmp/cap.xt.meta"}) {
    const std::string message = Rejection({"--capture", path});
    EXPECT_NE(message.find(".lock or .meta"), std::string::npos) << message;
  }
  EXPECT_EQ(Parse({"--capture", "/var/tmp/all.xt"}).capture_path, "/var/tmp/all.xt");
}

TEST(Options, AHugeNumberIsShownShortened) {
  const std::string huge(300, '9');
  const std::string message = Rejection({"--pages", huge});
  EXPECT_EQ(message.find(huge), std::string::npos) << message;
  EXPECT_LT(message.size(), 200u) << message;
}

TEST(Options, RepeatedWindowLengthsAndAContradictoryBackendAreRefused) {
  // "1,,1,10" gave the API two 1 s window series it could not tell apart.
  EXPECT_NE(Rejection({"--windows", "1,1,10"}).find("each window length once"), std::string::npos);
  EXPECT_NE(Rejection({"--simulate", "--backend", "xen"}).find("contradicts"), std::string::npos);
  EXPECT_EQ(Parse({"--simulate", "--backend", "simulate"}).backend, "simulate");
}

TEST(Options, TheMetricsAddressMustBeAnAddress) {
  Rejection({"--metrics-address", "localhost:9587"});
  EXPECT_EQ(Parse({"--metrics-address", "::1"}).metrics_address, "::1");
}

// --- The configuration file

class ConfigFile : public ::testing::Test {
 protected:
  TempDir dir_;
  ConfigRun run_{dir_.File("xenbaked.conf")};
};

TEST_F(ConfigFile, UnknownKeysAreErrorsWithTheFileAndLine) {
  const std::string message = run_.Reject("pages = 8\n# a comment\nmetric-port = 9587\n");
  EXPECT_NE(message.find(run_.file + " line 3"), std::string::npos) << message;
  EXPECT_NE(message.find("metric-port"), std::string::npos) << message;
}

TEST_F(ConfigFile, TablesGarbageAndUnterminatedStringsAreErrorsWithTheLine) {
  EXPECT_NE(run_.Reject("pages = 8\n[daemon]\n").find("line 2"), std::string::npos);
  EXPECT_NE(run_.Reject("garbage line\n").find("line 1"), std::string::npos);
  // Taken literally, this made a directory named '"' in the working directory.
  EXPECT_NE(run_.Reject("\n\nsocket = \"/run/x\n").find("line 3"), std::string::npos);
  EXPECT_NE(run_.Reject("socket = /run/x/api.sock\n").find("line 1"), std::string::npos);
  EXPECT_NE(run_.Reject("pages = 8\npages = 9\n").find("line 2"), std::string::npos);
  EXPECT_NE(run_.Reject("pages = [8, 9]\n").find("line 1"), std::string::npos);
  EXPECT_NE(run_.Reject("help = true\n").find("line 1"), std::string::npos);
}

TEST_F(ConfigFile, ABadValueInTheFileNamesTheLine) {
  const std::string message = run_.Reject("\nwindows = [1, 18446744074]\n");
  EXPECT_NE(message.find("--windows"), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
}

TEST_F(ConfigFile, ValuesOfEveryKindAreRead) {
  const DaemonOptions o = run_.Accept(
      "pages = 8   # trailing comment\r\n"
      "windows = [1, 10, 60,]\n"
      "socket = \"/run/x/api.sock\"\n"
      "event-mask = 'sched,gen'\n"
      "mlock = true\n"
      "keep-tracing = true\n"
      "sim-speed = 2.5\n"
      "history = 1_000\n");
  EXPECT_EQ(o.pages_per_cpu, 8u);
  EXPECT_EQ(o.windows_s, (std::vector<uint64_t>{1, 10, 60}));
  EXPECT_EQ(o.socket_path, "/run/x/api.sock");
  EXPECT_EQ(o.event_mask, "sched,gen");
  EXPECT_TRUE(o.lock_memory);
  EXPECT_FALSE(o.disable_tracing_on_exit);
  EXPECT_EQ(o.simulate.speed, 2.5);
  EXPECT_EQ(o.history, 1000u);
}

TEST_F(ConfigFile, AFifoIsRefusedRatherThanWaitedOn) {
  ASSERT_EQ(::mkfifo(run_.file.c_str(), 0600), 0);
  EXPECT_NE(Rejection({"--config", run_.file}).find("not a regular file"), std::string::npos);
  EXPECT_NE(Rejection({"--config=" + run_.file}).find("not a regular file"), std::string::npos);
}

TEST_F(ConfigFile, TheCommandLineWinsOverTheFile) {
  std::ofstream(run_.file) << "pages = 8\n";
  EXPECT_EQ(Parse({"--config", run_.file, "--pages", "16"}).pages_per_cpu, 16u);
}

TEST(PackagedConfig, TheShippedFileParses) {
  const DaemonOptions o =
      Parse({"--config", std::string(XENBAKED_SOURCE_DIR) + "/xenbaked/xenbaked.conf"});
  EXPECT_EQ(o.socket_path, "/run/xenbaked/api.sock");
  EXPECT_EQ(o.log_dir, "/var/log/xenbaked");
  EXPECT_FALSE(o.windows_s.empty());
}

// Every example of --help, as written (the packaged config read from the source tree).
TEST(HelpExamples, EveryExampleParses) {
  ::testing::internal::CaptureStdout();
  try {
    Parse({"--help"});
  } catch (const OptionsExit& e) {
    EXPECT_EQ(e.code, 0);
  }
  const std::string help = ::testing::internal::GetCapturedStdout();
  const size_t examples = help.find("EXAMPLES");
  ASSERT_NE(examples, std::string::npos);
  std::istringstream lines(help.substr(examples));
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    if (!line.starts_with("  xenbaked")) continue;
    // The command ends where its explanation starts (three spaces or more).
    std::istringstream words(line.substr(0, line.find("   ", 2)));
    std::vector<std::string> args;
    for (std::string w; words >> w;) {
      if (w == "/etc/xenbaked/xenbaked.conf")
        w = std::string(XENBAKED_SOURCE_DIR) + "/xenbaked/xenbaked.conf";
      args.push_back(w);
    }
    args.erase(args.begin());
    SCOPED_TRACE(line);
    EXPECT_NO_THROW(Parse(args));
    ++parsed;
  }
  EXPECT_GE(parsed, 5);
}

// --- Options that account nothing or expose the daemon

bool Mentions(const std::vector<std::string>& warnings, const std::string& text) {
  for (const std::string& w : warnings)
    if (w.find(text) != std::string::npos) return true;
  return false;
}

TEST(OptionWarnings, AMaskWithoutTheSchedulerClassAccountsNothing) {
  EXPECT_TRUE(Mentions(OptionWarnings(Parse({"--event-mask", "gen"})), "NOTHING IS ACCOUNTED"));
  EXPECT_TRUE(Mentions(OptionWarnings(Parse({"--event-mask", "hvm,pv"})), "NOTHING IS ACCOUNTED"));
  EXPECT_TRUE(OptionWarnings(Parse({"--event-mask", "sched"})).empty());
  EXPECT_TRUE(OptionWarnings(Parse({"--event-mask", "0x0002f000"})).empty());
  EXPECT_TRUE(OptionWarnings(Parse({})).empty());
}

TEST(OptionWarnings, MetricsBeyondLoopbackAreWarnedAbout) {
  EXPECT_TRUE(
      Mentions(OptionWarnings(Parse({"--metrics-port", "9587", "--metrics-address", "0.0.0.0"})),
               "beyond this host"));
  EXPECT_TRUE(Mentions(OptionWarnings(Parse({"--metrics-port", "9587", "--metrics-address", "::"})),
                       "beyond this host"));
  for (const char* local : {"127.0.0.1", "127.0.0.2", "::1"})
    EXPECT_TRUE(
        OptionWarnings(Parse({"--metrics-port", "9587", "--metrics-address", local})).empty())
        << local;
  // No port: no endpoint, nothing to warn about.
  EXPECT_TRUE(OptionWarnings(Parse({"--metrics-address", "0.0.0.0"})).empty());
}

// A notice, not a warning: it is the packaged configuration's safe default.
TEST(OptionNotices, ASocketWithoutGroupIsRootsAloneWhenRunAsRoot) {
  const DaemonOptions o = Parse({"--socket", "/run/x/api.sock"});
  EXPECT_TRUE(Mentions(OptionNotices(o, /*running_as_root=*/true), "--socket-group"));
  EXPECT_TRUE(OptionWarnings(o).empty());
  EXPECT_TRUE(OptionNotices(o, /*running_as_root=*/false).empty());
  EXPECT_TRUE(OptionNotices(Parse({"--socket", "/run/x/api.sock", "--socket-group", "adm"}),
                            /*running_as_root=*/true)
                  .empty());
}

TEST(CpuMaskCheck, AMaskOfNoExistingCpuIsAnErrorAndMissingOnesAreNamed) {
  const PhysInfo four{.nr_cpus = 4, .max_cpu_id = 3, .cpu_khz = 1000};
  auto none = CheckCpuMask("100", four);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("none of these CPUs"), std::string::npos);
  auto some = CheckCpuMask("2-5", four);
  ASSERT_TRUE(some);
  ASSERT_EQ(some->size(), 1u);
  EXPECT_NE((*some)[0].find("4,5"), std::string::npos) << (*some)[0];
  auto all = CheckCpuMask("all", four);
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty());
  auto inside = CheckCpuMask("0-3", four);
  ASSERT_TRUE(inside);
  EXPECT_TRUE(inside->empty());
}

}  // namespace
}  // namespace xenbaked
