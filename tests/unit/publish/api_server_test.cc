// The Unix-socket JSON API over a real socket in a temporary directory, driven by the test's
// io_context (poll / run_one_for; nothing sleeps).
#include "xenbaked/publish/api_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

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
  int fd() const { return fd_; }
  void ShutdownSending() { ::shutdown(fd_, SHUT_WR); }
  // Everything received so far and not yet taken as a line.
  const std::string& pending() const { return pending_; }

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
    config.own_thread = false;  // on io_, driven by the test
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
  // Runs the server until `client` sees the connection closed, or a bounded number of turns.
  void RunUntilEof(TestClient& client) {
    for (int turn = 0; turn < 2000 && !client.eof(); ++turn) {
      io_.run_one_for(std::chrono::milliseconds(5));
      (void)client.TryLine();
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
  EXPECT_TRUE(health["data"]["tbuf_advice"].is_null()) << "no advice before enough intervals";

  host_.health.tbuf_advice.ready = true;
  host_.health.tbuf_advice.recommended_pages = 96;
  host_.health.tbuf_advice.current_pages = 32;
  Publish();
  const json advice = Ask(client, R"({"cmd":"health"})")["data"]["tbuf_advice"];
  EXPECT_EQ(advice["recommended_pages"], 96);
  EXPECT_EQ(advice["current_pages"], 32);
  EXPECT_EQ(advice["boot_option"], "tbuf_size=96");
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
  RunUntilEof(client);
  EXPECT_TRUE(client.eof());
  EXPECT_EQ(server_->stats().oversize_closed, 1u);
}

// A subscriber is never closed to make room: the new client is refused.
TEST_F(ApiServerTest, ClientsBeyondTheLimitAreToldAndClosed) {
  ApiServerConfig config;
  config.max_clients = 1;
  StartServer(config);
  TestClient first(path_);
  json ok = Ask(first, R"({"cmd":"subscribe"})");
  EXPECT_TRUE(ok["ok"].get<bool>());
  TestClient second(path_);
  json refused = NextJson(second);
  EXPECT_EQ(refused["error"], "too many clients");
  EXPECT_EQ(server_->client_count(), 1u);
  EXPECT_EQ(server_->stats().clients_refused, 1u);
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
  host_.Advance(1);
  Publish();
  TestClient client(path_);
  EXPECT_TRUE(Ask(client, R"({"cmd":"health"})")["ok"].get<bool>());
  server_->Stop();
  io_.poll();
  (void)client.TryLine();
  EXPECT_TRUE(client.eof());
  EXPECT_FALSE(std::filesystem::exists(path_));
}

// Each of these once killed the daemon (an uncaught nlohmann::json::type_error) or was answered
// from a value of the wrong type. Each gets an error answer; the connection goes on.
TEST_F(ApiServerTest, HostileRequestsGetErrorsAndNeitherTheConnectionNorTheServerEnds) {
  StartServer();
  host_.Advance(1);
  Publish();
  TestClient client(path_);
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  const std::string deep_tag =
      R"({"cmd":"health","tag":)" + std::string(50, '[') + std::string(50, ']') + "}";
  const std::vector<std::string> hostile = {
      R"({"cmd":1})",
      R"({"cmd":5})",
      R"({"cmd":null})",
      R"({"cmd":{}})",
      R"({"cmd":[]})",
      R"({"cmd":true})",
      R"({"cmd":"history","length_ns":"x"})",
      R"({"cmd":"history","length_ns":{}})",
      R"({"cmd":"history","length_ns":-1})",
      R"({"cmd":"history","length_ns":1.5})",
      R"({"cmd":"history","length_ns":1e400})",
      R"({"cmd":"history","length_ns":99999999999999999999999999})",
      R"({"cmd":"domain","domid":-1})",
      R"({"cmd":"domain","domid":2.0})",
      R"({"cmd":"domain","domid":4294967296})",
      R"({"cmd":"domain","domid":18446744073709551616})",
      R"({"cmd":"domain","domid":null})",
      R"({"cmd":"domain"})",
      R"({"cmd":"health","tag":{"a":[1,2,{"b":3}]}})",
      R"({"cmd":"health","tag":")" + std::string(300, 't') + R"("})",
      "{\"cmd\":\"he\xff"
      "alth\"}",  // invalid UTF-8
      R"({"cmd":"\u0000\u001b[31m"})",
      deep,
      deep_tag,
      R"({"cmd":"health",)",
      "",
  };
  for (const std::string& bad : hostile) {
    json answer = Ask(client, bad);
    ASSERT_TRUE(answer.is_object()) << bad;
    EXPECT_FALSE(answer["ok"].get<bool>()) << bad;
    EXPECT_TRUE(answer["error"].is_string()) << bad;
  }
  // An integer beyond 64 bits where any number may stand is read as a float, not an error.
  json huge_tag = Ask(client, R"({"cmd":"health","tag":18446744073709551616})");
  EXPECT_TRUE(huge_tag["ok"].get<bool>()) << huge_tag.dump();
  EXPECT_DOUBLE_EQ(huge_tag["tag"].get<double>(), 18446744073709551616.0);
  json health = Ask(client, R"({"cmd":"health","tag":"after"})");
  EXPECT_TRUE(health["ok"].get<bool>());
  EXPECT_EQ(health["tag"], "after");
  EXPECT_EQ(server_->stats().bad_requests, hostile.size());
}

// A domain's name is untrusted text: whatever bytes it holds, the answer is one valid JSON line.
TEST_F(ApiServerTest, InvalidUtf8InANameStillGivesAValidAnswer) {
  StartServer();
  host_.Advance(1);
  host_.names[1] = "bad\xff\xfe\xc0name";
  Publish();
  TestClient client(path_);
  json domains = Ask(client, R"({"cmd":"domains"})");
  ASSERT_TRUE(domains["ok"].get<bool>());
  EXPECT_EQ(domains["data"][1]["name"], "bad???name");
}

TEST_F(ApiServerTest, BeforeTheFirstPublicationFiguresAreRefusedAsNotYetPublished) {
  StartServer();
  TestClient client(path_);
  for (const char* request : {R"({"cmd":"health"})", R"({"cmd":"domains"})", R"({"cmd":"windows"})",
                              R"({"cmd":"history"})", R"({"cmd":"domain","domid":0})"}) {
    json answer = Ask(client, request);
    EXPECT_FALSE(answer["ok"].get<bool>()) << request;
    EXPECT_EQ(answer["published"], false) << request;
    EXPECT_EQ(answer["error"], "no publication yet") << request;
  }
  // Subscribing works before: the first update follows the first publication.
  EXPECT_TRUE(Ask(client, R"({"cmd":"subscribe"})")["ok"].get<bool>());
  host_.Advance(1);
  Publish();
  json update = NextJson(client);
  EXPECT_EQ(update["event"], "update");
  EXPECT_EQ(update["seq"], 1);
  EXPECT_TRUE(Ask(client, R"({"cmd":"health"})")["ok"].get<bool>());
}

// A client that sends its request and shuts down its sending side gets the whole answer (here
// about 1 MB, far more than a socket buffer) before the server closes.
TEST_F(ApiServerTest, AHalfClosedClientGetsItsWholeAnswer) {
  StartServer();
  host_.Advance(1, /*domains=*/1000);
  Publish();
  TestClient client(path_);
  client.Send(R"({"cmd":"domains"})"
              "\n");
  client.ShutdownSending();
  std::optional<std::string> line;
  for (int turn = 0; turn < 20000 && !line && !client.eof(); ++turn) {
    io_.run_one_for(std::chrono::milliseconds(5));
    line = client.TryLine();
  }
  ASSERT_TRUE(line) << "got " << client.pending().size() << " bytes and no whole line";
  json answer = json::parse(*line);
  EXPECT_EQ(answer["data"].size(), 1000u);
  RunUntilEof(client);
  EXPECT_TRUE(client.eof());
}

// The last request of a half-closed client need not end with a newline.
TEST_F(ApiServerTest, AHalfClosedClientsLastRequestWithoutNewlineIsAnswered) {
  StartServer();
  host_.Advance(1);
  Publish();
  TestClient client(path_);
  client.Send(R"({"cmd":"health","tag":"last"})");
  client.ShutdownSending();
  json answer = NextJson(client);
  EXPECT_EQ(answer["tag"], "last");
}

// An idle client that neither asks nor subscribes is told and closed; a quiet subscriber is not.
TEST_F(ApiServerTest, AnIdleClientIsToldAndClosedButAQuietSubscriberStays) {
  ApiServerConfig config;
  config.idle_timeout = std::chrono::milliseconds(20);
  StartServer(config);
  host_.Advance(1);
  Publish();
  TestClient subscriber(path_);
  ASSERT_TRUE(Ask(subscriber, R"({"cmd":"subscribe"})")["ok"].get<bool>());
  TestClient idle(path_);
  ASSERT_TRUE(Ask(idle, R"({"cmd":"health"})")["ok"].get<bool>());
  json notice = NextJson(idle);  // arrives once the idle deadline passes
  EXPECT_FALSE(notice["ok"].get<bool>());
  EXPECT_NE(notice["error"].get<std::string>().find("idle"), std::string::npos);
  RunUntilEof(idle);
  EXPECT_TRUE(idle.eof());
  EXPECT_EQ(server_->stats().idle_closed, 1u);
  // The subscriber was as quiet for as long, and is still served.
  EXPECT_TRUE(Ask(subscriber, R"({"cmd":"health"})")["ok"].get<bool>());
  EXPECT_FALSE(subscriber.eof());
}

// At the limit, a new client closes the one idle the longest: idle clients cannot lock others
// out. (A limit held by subscribers refuses: ClientsBeyondTheLimitAreToldAndClosed.)
TEST_F(ApiServerTest, AtTheLimitANewClientClosesTheLongestIdle) {
  ApiServerConfig config;
  config.max_clients = 2;
  StartServer(config);
  host_.Advance(1);
  Publish();
  TestClient oldest(path_);
  ASSERT_TRUE(Ask(oldest, R"({"cmd":"health"})")["ok"].get<bool>());
  TestClient recent(path_);
  ASSERT_TRUE(Ask(recent, R"({"cmd":"health"})")["ok"].get<bool>());
  TestClient newcomer(path_);
  EXPECT_TRUE(Ask(newcomer, R"({"cmd":"health"})")["ok"].get<bool>());
  json notice = NextJson(oldest);
  EXPECT_EQ(notice["error"], "too many clients: closing the one idle the longest");
  EXPECT_TRUE(Ask(recent, R"({"cmd":"health"})")["ok"].get<bool>());
  EXPECT_EQ(server_->stats().clients_evicted, 1u);
  EXPECT_EQ(server_->client_count(), 2u);
}

// A subscriber that never reads is closed once one message has waited write_timeout to be
// written, instead of holding its connection and its queue forever.
TEST_F(ApiServerTest, AClientThatDoesNotReadIsClosedAfterTheWriteDeadline) {
  ApiServerConfig config;
  config.write_timeout = std::chrono::milliseconds(20);
  StartServer(config);
  host_.Advance(1, /*domains=*/2000);
  TestClient stuck(path_);
  ASSERT_TRUE(Ask(stuck, R"({"cmd":"subscribe"})")["ok"].get<bool>());
  for (int k = 0; k < 3; ++k) Publish();  // megabytes: far more than the socket buffers hold
  for (int turn = 0; turn < 2000 && server_->stats().write_timeouts == 0; ++turn) {
    io_.run_one_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->stats().write_timeouts, 1u);
  EXPECT_EQ(server_->client_count(), 0u);
}

// A line read with poll(2), waiting at most `limit` (generous: a functional bound, not a timing
// check). For a server on its own thread.
std::optional<std::string> WaitLine(TestClient& client,
                                    std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (auto line = client.TryLine()) return line;
    if (client.eof()) return std::nullopt;
    pollfd p{.fd = client.fd(), .events = POLLIN, .revents = 0};
    ::poll(&p, 1, 100);
  }
  return std::nullopt;
}

// The daemon's way: the server on a thread of its own, publications from another thread (here
// the test's), which never runs an io_context. Requests are answered while frames are handed
// over; every update arrives, in order.
TEST(ApiServerThreaded, ServesOnItsOwnThreadWhilePublicationsArriveFromAnother) {
  TempDir dir;
  const std::string path = dir.File("api.sock");
  boost::asio::io_context unused;  // never run: the server must not need it
  ApiServerConfig config;
  config.path = path;
  ASSERT_TRUE(config.own_thread);  // the default
  auto started = ApiServer::Start(unused, config);
  ASSERT_TRUE(started) << started.error().Describe();
  std::unique_ptr<ApiServer> server = std::move(*started);
  FakeHost host;
  constexpr uint32_t kDomains = 50;
  host.Advance(1, kDomains);
  server->Publish(host.View(1));

  TestClient subscriber(path);
  subscriber.Send(R"({"cmd":"subscribe"})"
                  "\n");
  std::optional<std::string> subscribed = WaitLine(subscriber);
  ASSERT_TRUE(subscribed);
  EXPECT_TRUE(json::parse(*subscribed)["ok"].get<bool>());

  // Another thread asks for every domain again and again while publications go on.
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  std::thread asker([&] {
    TestClient client(path);
    for (int i = 0; i < 40; ++i) {
      client.Send(R"({"cmd":"domains"})"
                  "\n");
      std::optional<std::string> line = WaitLine(client);
      if (!line) break;
      const json answer = json::parse(*line);
      if (!answer["ok"].get<bool>() || answer["data"].size() != kDomains) ++wrong;
      ++answered;
    }
  });
  for (uint64_t k = 2; k <= 30; ++k) {
    host.Advance(k, kDomains);
    server->Publish(host.View(k));
    std::optional<std::string> line = WaitLine(subscriber);
    ASSERT_TRUE(line) << "no update " << k;
    const json update = json::parse(*line);
    EXPECT_EQ(update["event"], "update");
    EXPECT_EQ(update["seq"], k);
    EXPECT_EQ(update["data"]["domains"].size(), kDomains);
  }
  asker.join();
  EXPECT_EQ(answered, 40);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(server->stats().requests, 41u);

  server->Stop();  // joins the server's thread
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(WaitLine(subscriber));
  EXPECT_TRUE(subscriber.eof());
  server.reset();
}

// The daemon may run SCHED_FIFO (--rt-priority), which new threads inherit; the server's thread
// must not serve clients at the drain's priority. SCHED_BATCH stands in for it here: any thread
// may take it without privilege, and it is inherited the same way.
TEST(ApiServerThreaded, TheServersThreadDoesNotInheritTheDaemonsSchedulingPolicy) {
  const sched_param zero{};
  ASSERT_EQ(::sched_setscheduler(0, SCHED_BATCH, &zero), 0);
  TempDir dir;
  boost::asio::io_context unused;
  ApiServerConfig config;
  config.path = dir.File("api.sock");
  auto server = ApiServer::Start(unused, config);
  ASSERT_TRUE(server) << server.error().Describe();
  // Once it has answered, the server's thread has run its start.
  TestClient client(config.path);
  client.Send(R"({"cmd":"health"})"
              "\n");
  ASSERT_TRUE(WaitLine(client));
  const pid_t self = ::gettid();
  int others = 0;
  bool all_normal = true;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    const pid_t tid = std::stoi(task.path().filename().string());
    if (tid == self) continue;
    ++others;
    all_normal = all_normal && ::sched_getscheduler(tid) == SCHED_OTHER;
  }
  (*server)->Stop();
  EXPECT_EQ(::sched_setscheduler(0, SCHED_OTHER, &zero), 0);
  EXPECT_GT(others, 0);
  EXPECT_TRUE(all_normal);
}

}  // namespace
}  // namespace xenbaked::publish
