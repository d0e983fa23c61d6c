// xenbaked/publish/api_requests.h — the socket API's requests, apart from any socket: one line
// in, one answer line out, against an immutable frame of one publication. The server calls
// AnswerRequest for every line it reads; the fuzzer and the tests call it directly.
//
// Every line is untrusted: it is parsed without exceptions, its nesting depth is bounded, every
// field is checked for type and range before use, and whatever still throws while answering is
// caught here and becomes an error answer. A line never ends the connection or the daemon.
//
//   std::shared_ptr<const ApiFrame> frame = MakeApiFrame(view, seq, /*with_history=*/true);
//   ApiAnswer a = AnswerRequest(R"({"cmd":"domains"})", frame.get());
//   write(a.line);                          // ends with '\n'
//   if (a.action == ApiAction::kSubscribe) ...
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xenbaked/publish/publish_view.h"

namespace xenbaked::publish {

// One publication's figures, owned and never changed after MakeApiFrame: handed from the drain
// thread to the API server's thread as a shared_ptr<const ApiFrame>.
struct ApiFrame {
  uint64_t seq = 0;  // 1 for the first publication
  uint64_t realtime_ns = 0;
  AccountingSnapshot totals;
  std::vector<Window> latest;               // the newest closed window of each length
  std::vector<std::deque<Window>> history;  // every kept window, only when asked for
  DaemonHealth health;
  DomainNames names;
  std::optional<ReconcileReport> reconcile;  // when the daemon reconciles with the hypervisor
};

std::shared_ptr<const ApiFrame> MakeApiFrame(const PublishView& view, uint64_t seq,
                                             bool with_history);

// What a request asks of its connection besides the answer.
enum class ApiAction { kNone, kSubscribe, kUnsubscribe };

struct ApiAnswer {
  std::string line;  // one JSON object and '\n'
  ApiAction action = ApiAction::kNone;
  bool ok = false;  // false: a bad request (counted by the server)
};

// Requests nested deeper than this (objects and arrays) are refused before they are parsed.
inline constexpr int kMaxRequestDepth = 16;

// Answers one request line (without its '\n'). `frame` is null before the first publication:
// requests for figures then answer {"ok":false,"published":false,"error":"no publication yet"}.
ApiAnswer AnswerRequest(std::string_view line, const ApiFrame* frame);

// The "update" message subscribers get after each publication.
std::string UpdateLine(const ApiFrame& frame);
// {"ok":false,"error":what} and '\n', for the server's own notices (limits, timeouts).
std::string ErrorLine(std::string_view what);

}  // namespace xenbaked::publish
