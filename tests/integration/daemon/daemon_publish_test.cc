// The daemon with its publishers made from options, exactly as Main makes them (AddPublishers),
// against an in-process simulated host stepped deterministically: a client of the Unix-socket
// JSON API and a scrape of the Prometheus endpoint see what the daemon accounted. The io_context
// is polled and simulated time advanced together; nothing sleeps.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../../unit/publish/fake_host.h"
#include "simulator/simulated_host.h"
#include "xenbaked/daemon.h"
#include "xenbaked/options_exit.h"
#include "xenbaked/publishers.h"
#include "xenbaked/simulated_hypervisor.h"

namespace xenbaked {
namespace {

using nlohmann::json;
constexpr uint64_t kStepNs = 10'000'000;  // 10 ms of simulated time per step

using publish::testing::TempDir;

// A non-blocking client socket; the test drives the daemon between reads.
class Client {
 public:
  explicit Client(int fd) : fd_(fd) {}
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  static std::optional<Client> ConnectUnix(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return std::nullopt;
    }
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    return std::optional<Client>(std::in_place, fd);
  }
  static std::optional<Client> ConnectLocalhost(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return std::nullopt;
    }
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    return std::optional<Client>(std::in_place, fd);
  }
  Client(Client&& o) noexcept : fd_(std::exchange(o.fd_, -1)), in_(std::move(o.in_)) {}

  bool Send(const std::string& text) {
    return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == ssize_t(text.size());
  }
  // Reads whatever has arrived; returns false once the peer has closed.
  bool Pump() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        in_.append(buf, size_t(n));
        continue;
      }
      return n != 0;
    }
  }
  std::optional<std::string> Line() {
    Pump();
    const size_t nl = in_.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = in_.substr(0, nl);
    in_.erase(0, nl + 1);
    return line;
  }
  const std::string& received() const { return in_; }
  // Waits at most `ms` for something to read: the socket API answers from a thread of its own,
  // not from the loop the test steps.
  void WaitReadable(int ms) {
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    ::poll(&p, 1, ms);
  }

 private:
  int fd_ = -1;
  std::string in_;
};

class DaemonPublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    simulator::HostConfig config;
    config.workload.cpu_ids = {0, 1};
    config.workload.domains = 4;
    config.workload.vcpus_per_domain = 2;
    config.workload.seed = 5;
    auto host = simulator::SimulatedHost::Create(config);
    ASSERT_TRUE(host) << host.error().Describe();
    host_ = std::move(*host);
    hv_ = std::make_unique<SimulatedHypervisor>(*host_);

    // Directories that do not exist yet: the daemon makes them.
    options_.socket_path = tmp_.File("run/xenbaked/api.sock");
    options_.log_dir = tmp_.File("log/xenbaked");
    options_.capture_path = tmp_.File("capture/raw.xt");
    options_.metrics_port = 0;  // any free port
    options_.pages_per_cpu = 8;
    options_.interval_ms = 1000;
    options_.initial_contents = InitialContents::kAccount;
    daemon_ = std::make_unique<Daemon>(io_, scheduler_, *hv_, options_, log_);
    auto endpoints = AddPublishers(*daemon_, io_, options_, *hv_->GetPhysInfo(), log_,
                                   [this] { return scheduler_.UnixNowNs(); });
    ASSERT_TRUE(endpoints) << endpoints.error().Describe();
    endpoints_ = *endpoints;
    ASSERT_TRUE(daemon_->Start());
  }
  void TearDown() override {
    if (daemon_) daemon_->Stop();
    io_.restart();
    io_.poll();
  }

  // One step: simulated time and the daemon's clock move on together, the loop runs.
  void Step() {
    host_->Advance(kStepNs);
    scheduler_.Advance(kStepNs);
    io_.restart();
    io_.poll();
  }
  void StepSeconds(uint64_t s) {
    for (uint64_t t = 0; t < s * 1'000'000'000; t += kStepNs) Step();
  }
  // Steps until `client` has a whole line (bounded: 5 simulated seconds).
  std::optional<json> Await(Client& client) {
    for (int i = 0; i < 500; ++i) {
      if (auto line = client.Line()) return json::parse(*line);
      Step();
      client.WaitReadable(5);
    }
    return std::nullopt;
  }
  std::optional<json> Ask(Client& client, const std::string& request) {
    EXPECT_TRUE(client.Send(request + "\n"));
    return Await(client);
  }

  TempDir tmp_;
  boost::asio::io_context io_;
  ManualScheduler scheduler_;
  Logger log_{LogLevel::kError, Logger::Sink([](LogLevel, std::string_view) {})};
  std::unique_ptr<simulator::SimulatedHost> host_;
  std::unique_ptr<SimulatedHypervisor> hv_;
  DaemonOptions options_;
  std::unique_ptr<Daemon> daemon_;
  PublisherEndpoints endpoints_;
};

TEST_F(DaemonPublishTest, MissingDirectoriesAreCreatedPrivate) {
  for (const char* dir : {"run/xenbaked", "run", "log/xenbaked", "capture"}) {
    struct stat st {};
    ASSERT_EQ(::stat(tmp_.File(dir).c_str(), &st), 0) << dir;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
    EXPECT_EQ(st.st_mode & 07777, 0750u) << dir;
  }
  EXPECT_EQ(endpoints_.accounting_log_path, options_.log_dir + "/accounting.log");
  EXPECT_TRUE(std::filesystem::exists(endpoints_.accounting_log_path));
}

TEST_F(DaemonPublishTest, SocketApiAnswersDomainsHealthAndSubscribe) {
  ASSERT_EQ(endpoints_.socket_path, options_.socket_path);
  auto client = Client::ConnectUnix(endpoints_.socket_path);
  ASSERT_TRUE(client);
  StepSeconds(2);  // two publications

  std::optional<json> domains = Ask(*client, R"({"cmd":"domains"})");
  ASSERT_TRUE(domains);
  ASSERT_EQ((*domains)["ok"], true) << domains->dump();
  ASSERT_TRUE((*domains)["data"].is_array()) << domains->dump();
  EXPECT_FALSE((*domains)["data"].empty());
  bool dom0_ran = false;
  for (const json& d : (*domains)["data"])
    if (d["domid"] == 0 && d["totals"]["running_ns"].get<uint64_t>() > 0) dom0_ran = true;
  EXPECT_TRUE(dom0_ran) << domains->dump();

  std::optional<json> health = Ask(*client, R"({"cmd":"health"})");
  ASSERT_TRUE(health);
  ASSERT_EQ((*health)["ok"], true) << health->dump();
  EXPECT_GT((*health)["data"]["records"].get<uint64_t>(), 0u);
  EXPECT_EQ((*health)["data"]["backend"], "simulated");

  std::optional<json> subscribed = Ask(*client, R"({"cmd":"subscribe"})");
  ASSERT_TRUE(subscribed);
  EXPECT_EQ((*subscribed)["ok"], true) << subscribed->dump();
  std::optional<json> update = Await(*client);  // after the next publication
  ASSERT_TRUE(update);
  EXPECT_EQ((*update)["event"], "update") << update->dump();
  EXPECT_FALSE((*update)["data"]["domains"].empty());
  EXPECT_GT((*update)["seq"].get<uint64_t>(), (*subscribed)["seq"].get<uint64_t>());
}

TEST_F(DaemonPublishTest, MetricsEndpointServesDomainCpuSeconds) {
  ASSERT_TRUE(endpoints_.metrics_port);
  ASSERT_NE(*endpoints_.metrics_port, 0);
  StepSeconds(2);
  auto client = Client::ConnectLocalhost(*endpoints_.metrics_port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(
      client->Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  bool open = true;
  for (int i = 0; i < 2000 && open; ++i) {  // bounded: the server closes after the response
    io_.restart();
    io_.run_one_for(std::chrono::milliseconds(5));
    open = client->Pump();
  }
  EXPECT_FALSE(open) << "the response never ended";
  const std::string& text = client->received();
  EXPECT_NE(text.find("HTTP/1.1 200"), std::string::npos) << text.substr(0, 200);
  EXPECT_NE(text.find("xenbaked_domain_cpu_seconds_total{domid=\"0\""), std::string::npos) << text;
  EXPECT_NE(text.find("xenbaked_up 1"), std::string::npos);
}

TEST_F(DaemonPublishTest, StopClosesClientsAndRemovesTheSocket) {
  auto client = Client::ConnectUnix(endpoints_.socket_path);
  ASSERT_TRUE(client);
  StepSeconds(1);
  daemon_->Stop();
  bool open = true;
  for (int i = 0; i < 100 && open; ++i) {
    io_.restart();
    io_.poll();
    open = client->Pump();
  }
  EXPECT_FALSE(open);
  EXPECT_FALSE(std::filesystem::exists(endpoints_.socket_path));
  EXPECT_FALSE(Client::ConnectLocalhost(*endpoints_.metrics_port));
}

TEST(DaemonPublishers, AnUncreatableDirectoryIsAClearError) {
  TempDir tmp;
  const std::string file = tmp.File("plain-file");
  std::FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  tracefmt::Status st = EnsureDirectory(file + "/logs");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().Describe().find(file), std::string::npos) << st.error().Describe();

  st = EnsureDirectory(file);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().Describe().find("not a directory"), std::string::npos)
      << st.error().Describe();
}

TEST(DaemonPublishers, GroupsResolveByNumberAndName) {
  auto by_number = ResolveGroup("4244");
  ASSERT_TRUE(by_number);
  EXPECT_EQ(*by_number, 4244u);
  auto root = ResolveGroup("root");
  ASSERT_TRUE(root);
  EXPECT_EQ(*root, 0u);
  auto missing = ResolveGroup("no-such-group-xenbaked");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().Describe().find("no-such-group-xenbaked"), std::string::npos);
}

}  // namespace
}  // namespace xenbaked

namespace xenbaked {
namespace {

DaemonOptions Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "xenbaked");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

TEST(DaemonOptionsForPublishers, SocketAndMetricsAreOffUnlessGiven) {
  const DaemonOptions none = Parse({});
  EXPECT_TRUE(none.socket_path.empty());
  EXPECT_FALSE(none.metrics_port);
  const DaemonOptions some = Parse({"--socket", "/run/x/api.sock", "--socket-group", "adm",
                                    "--metrics-port", "9587", "--metrics-address", "::1"});
  EXPECT_EQ(some.socket_path, "/run/x/api.sock");
  EXPECT_EQ(some.socket_group, "adm");
  ASSERT_TRUE(some.metrics_port);
  EXPECT_EQ(*some.metrics_port, 9587);
  EXPECT_EQ(some.metrics_address, "::1");
  ASSERT_TRUE(Parse({"--metrics-port", "0"}).metrics_port);
}

TEST(DaemonOptionsForPublishers, BadValuesExitTwo) {
  for (std::vector<std::string> bad :
       {std::vector<std::string>{"--metrics-port", "70000"}, {"--no-such-option"}}) {
    try {
      Parse(bad);
      ADD_FAILURE() << bad[0] << " was accepted";
    } catch (const OptionsExit& e) {
      EXPECT_EQ(e.code, 2) << bad[0];
    }
  }
}

}  // namespace
}  // namespace xenbaked
