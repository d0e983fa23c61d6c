// The Unix-socket JSON API over a real socket in a temporary directory, driven by the test's
// io_context (poll / run_one_for; nothing sleeps).
#include "xenbaked/publish/api_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <nlohmann/json.hpp>

#include "fake_host.h"

namespace xenbaked::publish {
namespace {

using nlohmann::json;
using testing::FakeHost;
using testing::TempDir;

// A plain client socket read without blocking, so one thread can drive both ends.
class TestClient {
 public:
  explicit TestClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~TestClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::send(fd_, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) break;
      done += size_t(n);
    }
  }
  // A complete line if one has arrived (reads whatever is there, never waits).
  std::optional<std::string> TryLine() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        pending_.append(buf, size_t(n));
        continue;
      }
      eof_ = eof_ || n == 0;
      break;
    }
    const size_t nl = pending_.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = pending_.substr(0, nl);
    pending_.erase(0, nl + 1);
    return line;
  }
  bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string pending_;
};

class ApiServerTest : public ::testing::Test {
 protected:
  void StartServer(ApiServerConfig config = {}) {
    config.path = path_;
    config.group = 4244;
    auto server = ApiServer::Start(io_, config);
    ASSERT_TRUE(server) << server.error().Describe();
    server_ = std::move(*server);
  }
  // Runs the server until `client` has a line, or gives up after a bounded number of turns.
  json NextJson(TestClient& client) {
    for (int turn = 0; turn < 2000; ++turn) {
      io_.poll();
      if (auto line = client.TryLine()) return json::parse(*line);
      if (client.eof()) break;
      io_.run_one_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "no line arrived";
    return {};
  }
  // Reads every line the server has queued for `client`, until neither side has work left.
  template <typename Fn>
  void DrainAll(TestClient& client, Fn&& each) {
    for (int idle = 0; idle < 3;) {
      const size_t ran = io_.poll();
      std::optional<std::string> line = client.TryLine();
      if (line) each(json::parse(*line));
      idle = (ran == 0 && !line) ? idle + 1 : 0;
    }
  }
  json Ask(TestClient& client, const std::string& request) {
    client.Send(request + "\n");
    return NextJson(client);
  }
  void Publish() { server_->Publish(host_.View(++publications_)); }

  TempDir dir_;
  std::string path_ = dir_.File("api.sock");
  boost::asio::io_context io_;
  std::unique_ptr<ApiServer> server_;
  FakeHost host_;
  uint64_t publications_ = 0;
};

TEST_F(ApiServerTest, AnswersEachCommand) {
  StartServer();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, 4244u);
  host_.Advance(1);
  host_.Advance(2);
  Publish();
  TestClient client(path_);
  ASSERT_TRUE(client.connected());

  json domains = Ask(client, R"({"cmd":"domains","tag":17})");
  ASSERT_TRUE(domains["ok"].get<bool>()) << domains.dump();
  EXPECT_EQ(domains["tag"], 17);
  ASSERT_EQ(domains["data"].size(), 3u);
  EXPECT_EQ(domains["data"][0]["name"], "Domain-0");
  EXPECT_EQ(domains["data"][1]["totals"]["running_ns"], 2'000'000);
  EXPECT_EQ(domains["data"][1]["windows"][0]["running_ns"], 1'000'000);
  EXPECT_EQ(domains["data"][1]["windows"][0]["length_ns"], 1'000'000'000);

  json one = Ask(client, R"({"cmd":"domain","domid":2})");
  ASSERT_TRUE(one["ok"].get<bool>());
  EXPECT_EQ(one["data"]["domid"], 2);
  EXPECT_EQ(one["data"]["vcpu_totals"].size(), 2u);
  EXPECT_FALSE(Ask(client, R"({"cmd":"domain","domid":99})")["ok"].get<bool>());

  json windows = Ask(client, R"({"cmd":"windows"})");
  ASSERT_EQ(windows["data"].size(), 1u);  // only the 1 s length has a closed window
  EXPECT_EQ(windows["data"][0]["end_ns"], 2'000'000'000);

  host_.Advance(3);
  Publish();  // a client is connected now: the history is kept
  json history = Ask(client, R"({"cmd":"history","length_ns":1000000000})");
  ASSERT_TRUE(history["ok"].get<bool>());
  ASSERT_EQ(history["data"].size(), 1u);
  EXPECT_EQ(history["data"][0]["windows"].size(), 2u);

  json health = Ask(client, R"({"cmd":"health"})");
  EXPECT_EQ(health["data"]["backend"], "simulated");
  EXPECT_EQ(health["data"]["wakes"]["irq"], 9);
  EXPECT_EQ(health["seq"], 2);
}

TEST_F(ApiServerTest, MalformedRequestsGetErrorsAndTheConnectionStaysUsable) {
  StartServer();
  host_.Advance(1);
  Publish();
  TestClient client(path_);
  for (const char* bad : {"not json", "[1,2,3]", R"({"cmd":"reboot"})", R"({"nocmd":1})",
                          R"({"cmd":"domain","domid":"x"})"}) {
    json answer = Ask(client, bad);
    EXPECT_FALSE(answer["ok"].get<bool>()) << bad;
    EXPECT_TRUE(answer["error"].is_string()) << bad;
  }
  EXPECT_TRUE(Ask(client, R"({"cmd":"health"})")["ok"].get<bool>());
  EXPECT_EQ(server_->stats().bad_requests, 5u);
}

TEST_F(ApiServerTest, AnOversizeRequestClosesTheConnection) {
  ApiServerConfig config;
  config.max_request_bytes = 1024;
  StartServer(config);
  TestClient client(path_);
  client.Send(std::string(4096, 'x'));
  json answer = NextJson(client);
  EXPECT_FALSE(answer["ok"].get<bool>());
  for (int turn = 0; turn < 2000 && !client.eof(); ++turn) {
    io_.run_one_for(std::chrono::milliseconds(5));
    (void)client.TryLine();
  }
  EXPECT_TRUE(client.eof());
  EXPECT_EQ(server_->stats().oversize_closed, 1u);
}

TEST_F(ApiServerTest, ClientsBeyondTheLimitAreToldAndClosed) {
  ApiServerConfig config;
  config.max_clients = 1;
  StartServer(config);
  TestClient first(path_);
  json ok = Ask(first, R"({"cmd":"health"})");
  EXPECT_TRUE(ok["ok"].get<bool>());
  TestClient second(path_);
  json refused = NextJson(second);
  EXPECT_EQ(refused["error"], "too many clients");
  EXPECT_EQ(server_->client_count(), 1u);
}

TEST_F(ApiServerTest, AStuckSubscriberNeitherDelaysOthersNorLosesCountOfWhatItMissed) {
  ApiServerConfig config;
  config.max_queued_messages = 4;
  StartServer(config);
  host_.Advance(1, /*domains=*/200);
  TestClient stuck(path_);
  TestClient reader(path_);
  ASSERT_TRUE(Ask(stuck, R"({"cmd":"subscribe"})")["ok"].get<bool>());
  ASSERT_TRUE(Ask(reader, R"({"cmd":"subscribe"})")["ok"].get<bool>());

  constexpr uint64_t kUpdates = 100;
  for (uint64_t k = 1; k <= kUpdates; ++k) {
    Publish();  // returns at once whatever `stuck` does
    json update = NextJson(reader);
    ASSERT_EQ(update["event"], "update");
    ASSERT_EQ(update["seq"], k) << "the reading subscriber missed an update";
    ASSERT_FALSE(update.contains("missed"));
  }
  EXPECT_GT(server_->stats().updates_dropped, 0u);

  // The stuck client wakes up and reads everything that was queued for it.
  uint64_t missed = 0;
  DrainAll(stuck, [&missed](const json& update) { missed += update.value("missed", uint64_t{0}); });
  // The next update it gets says how many it missed; with those seen so far, every drop.
  Publish();
  json next = NextJson(stuck);
  EXPECT_EQ(next["seq"], publications_);
  missed += next.value("missed", uint64_t{0});
  EXPECT_GT(missed, 0u);
  EXPECT_EQ(missed, server_->stats().updates_dropped);
}

TEST_F(ApiServerTest, StopClosesClientsAndRemovesTheSocket) {
  StartServer();
  TestClient client(path_);
  EXPECT_TRUE(Ask(client, R"({"cmd":"health"})")["ok"].get<bool>());
  server_->Stop();
  io_.poll();
  (void)client.TryLine();
  EXPECT_TRUE(client.eof());
  EXPECT_FALSE(std::filesystem::exists(path_));
}

}  // namespace
}  // namespace xenbaked::publish
