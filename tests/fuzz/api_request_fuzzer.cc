// libFuzzer target over the socket API's request handling: every input is split into lines and
// each line is answered by AnswerRequest, the function the server calls for every line it reads,
// against a frame with a few domains, windows and history, and against no frame (before the
// first publication). It checks invariants, not just the absence of crashes: every answer is one
// line of valid JSON, an object with a boolean "ok", and an error answer says why.
//
// Build and run: see tests/README.md (Fuzz tier). Seeds: tests/data/api_requests.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "fake_host.h"
#include "xenbaked/publish/api_requests.h"

namespace {

using nlohmann::json;
using xenbaked::publish::AnswerRequest;
using xenbaked::publish::ApiAnswer;
using xenbaked::publish::ApiFrame;

void Check(bool condition) {
  if (!condition) std::abort();
}

const ApiFrame& Frame() {
  static const std::shared_ptr<const ApiFrame> frame = [] {
    xenbaked::publish::testing::FakeHost host;
    for (uint64_t second = 1; second <= 11; ++second) host.Advance(second, /*domains=*/4);
    host.names[3] = "bad\xff name";
    return xenbaked::publish::MakeApiFrame(host.View(11), /*seq=*/11, /*with_history=*/true);
  }();
  return *frame;
}

void CheckAnswer(const ApiAnswer& answer) {
  Check(!answer.line.empty() && answer.line.back() == '\n');
  Check(answer.line.find('\n') == answer.line.size() - 1);
  const json parsed = json::parse(answer.line, nullptr, /*allow_exceptions=*/false);
  Check(parsed.is_object());
  const auto ok = parsed.find("ok");
  Check(ok != parsed.end() && ok->is_boolean() && ok->get<bool>() == answer.ok);
  if (!answer.ok) {
    const auto error = parsed.find("error");
    Check(error != parsed.end() && error->is_string());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start <= input.size()) {
    size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view line = input.substr(start, end - start);
    CheckAnswer(AnswerRequest(line, &Frame()));
    CheckAnswer(AnswerRequest(line, nullptr));
    start = end + 1;
  }
  return 0;
}
