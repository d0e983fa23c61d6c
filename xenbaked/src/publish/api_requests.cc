#include "xenbaked/publish/api_requests.h"

#include <fmt/format.h>

#include <exception>
#include <limits>
#include <optional>

#include "api_json.h"

namespace xenbaked::publish {

namespace {

using nlohmann::json;

constexpr size_t kMaxTagBytes = 256;

std::string Dump(const json& j) {
  // Names are sanitised already; `replace` keeps any other invalid UTF-8 from throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json ErrorJson(std::string_view what) {
  return {{"ok", false}, {"error", what}};
}

json Ok(const ApiFrame& f, std::string_view cmd, json data) {
  return {{"ok", true}, {"cmd", cmd}, {"seq", f.seq}, {"data", std::move(data)}};
}

// Deepest nesting of objects and arrays in `text`, counted outside strings, so that a hostile
// line cannot make parsing, echoing or destroying its value recurse without bound.
int NestingDepth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[')
      deepest = std::max(deepest, ++depth);
    else if (c == '}' || c == ']')
      --depth;
  }
  return deepest;
}

// `field` as an unsigned integer no larger than `max`, or nullopt when it is of another type
// (string, float, negative, object...) or out of range.
std::optional<uint64_t> UnsignedField(const json& req, const char* field, uint64_t max) {
  const auto it = req.find(field);
  if (it == req.end() || !it->is_number_unsigned()) return std::nullopt;
  const uint64_t value = it->get<uint64_t>();
  if (value > max) return std::nullopt;
  return value;
}

json HealthWithReconcile(const ApiFrame& f) {
  json out = api::HealthJson(f.health);
  out["reconcile"] = api::ReconcileJson(f.reconcile);
  return out;
}

// The domain's figures against the hypervisor's in the last reconciliation, when it was compared.
void AddReconcile(const ApiFrame& f, const DomainTotals& d, json& out) {
  if (!f.reconcile || d.destroyed) return;
  if (const DomainReconcile* r = f.reconcile->Find(d.domid, d.instance))
    out["reconcile"] = api::DomainReconcileJson(*r);
}

json AllDomains(const ApiFrame& f, const std::vector<const Window*>& latest) {
  json list = json::array();
  for (const DomainTotals& d : f.totals.domains) {
    json one = api::DomainJson(d, f.names, latest, /*vcpus=*/false);
    AddReconcile(f, d, one);
    list.push_back(std::move(one));
  }
  return list;
}

std::vector<const Window*> LatestPointers(const ApiFrame& f) {
  std::vector<const Window*> out;
  for (const Window& w : f.latest) out.push_back(&w);
  return out;
}

json History(const ApiFrame& f, uint64_t length) {
  json lengths = json::array();
  for (const std::deque<Window>& windows : f.history) {
    if (windows.empty() || (length != 0 && windows.front().length_ns != length)) continue;
    json list = json::array();
    for (const Window& w : windows) list.push_back(api::WindowJson(w, f.names));
    lengths.push_back({{"length_ns", windows.front().length_ns}, {"windows", std::move(list)}});
  }
  return lengths;
}

// The answer to a request whose "cmd" is a string; every other field is checked here.
json Dispatch(const json& req, const std::string& cmd, const ApiFrame* f, ApiAction& action) {
  if (cmd == "subscribe" || cmd == "unsubscribe") {
    action = cmd == "subscribe" ? ApiAction::kSubscribe : ApiAction::kUnsubscribe;
    return {{"ok", true}, {"cmd", cmd}, {"seq", f ? f->seq : 0}, {"data", nullptr}};
  }
  const bool known = cmd == "domains" || cmd == "domain" || cmd == "windows" || cmd == "history" ||
                     cmd == "health";
  if (!known) {
    return ErrorJson(cmd.empty() ? std::string("request needs \"cmd\"")
                                 : fmt::format("unknown cmd \"{}\"", SanitizeName(cmd)));
  }
  // Arguments are checked before the publication is looked at: a bad request is bad either way.
  std::optional<uint64_t> domid;
  uint64_t length = 0;
  if (cmd == "domain") {
    domid = UnsignedField(req, "domid", std::numeric_limits<uint32_t>::max());
    if (!domid) return ErrorJson("domain needs \"domid\": an integer from 0 to 4294967295");
  }
  if (cmd == "history" && req.contains("length_ns")) {
    const std::optional<uint64_t> l =
        UnsignedField(req, "length_ns", std::numeric_limits<uint64_t>::max());
    if (!l) return ErrorJson("\"length_ns\" must be a non-negative integer (nanoseconds)");
    length = *l;
  }
  if (f == nullptr) {
    json out = ErrorJson("no publication yet");
    out["published"] = false;
    return out;
  }
  if (cmd == "domains") return Ok(*f, cmd, AllDomains(*f, LatestPointers(*f)));
  if (cmd == "domain") {
    for (const DomainTotals& d : f->totals.domains) {
      if (d.domid == *domid && !d.destroyed) {
        json one = api::DomainJson(d, f->names, LatestPointers(*f), /*vcpus=*/true);
        AddReconcile(*f, d, one);
        return Ok(*f, cmd, std::move(one));
      }
    }
    return ErrorJson(fmt::format("no domain {}", *domid));
  }
  if (cmd == "windows") {
    json list = json::array();
    for (const Window& w : f->latest) list.push_back(api::WindowJson(w, f->names));
    return Ok(*f, cmd, std::move(list));
  }
  if (cmd == "history") return Ok(*f, cmd, History(*f, length));
  return Ok(*f, cmd, HealthWithReconcile(*f));  // "health", the last known command
}

bool ValidTag(const json& tag) {
  if (tag.is_string()) return tag.get_ref<const std::string&>().size() <= kMaxTagBytes;
  return tag.is_number() || tag.is_boolean() || tag.is_null();
}

ApiAnswer Answer(std::string_view line, const ApiFrame* frame) {
  if (NestingDepth(line) > kMaxRequestDepth) {
    return {.line = ErrorLine(fmt::format("request nested deeper than {}", kMaxRequestDepth))};
  }
  const json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded() || !req.is_object()) {
    return {.line = ErrorLine("malformed request: expected one JSON object per line")};
  }
  const auto tag = req.find("tag");
  if (tag != req.end() && !ValidTag(*tag)) {
    return {.line = ErrorLine(
                fmt::format("\"tag\" must be a string of at most {} bytes, a number, a boolean "
                            "or null",
                            kMaxTagBytes))};
  }
  const auto cmd = req.find("cmd");
  ApiAnswer answer;
  json out;
  if (cmd == req.end() || !cmd->is_string()) {
    out = ErrorJson("request needs \"cmd\": a string");
  } else {
    out = Dispatch(req, cmd->get_ref<const std::string&>(), frame, answer.action);
  }
  answer.ok = out["ok"].get<bool>();
  if (tag != req.end()) out["tag"] = *tag;
  answer.line = Dump(out);
  return answer;
}

}  // namespace

std::shared_ptr<const ApiFrame> MakeApiFrame(const PublishView& view, uint64_t seq,
                                             bool with_history) {
  auto frame = std::make_shared<ApiFrame>();
  frame->seq = seq;
  frame->realtime_ns = view.realtime_ns;
  frame->totals = view.totals;
  for (size_t i = 0; i < view.windows.length_count(); ++i) {
    const std::deque<Window>& closed = view.windows.windows(i);
    if (!closed.empty()) frame->latest.push_back(closed.back());
    if (with_history) frame->history.push_back(closed);
  }
  frame->health = view.health;
  frame->names = view.names;
  if (view.reconcile != nullptr) frame->reconcile = *view.reconcile;
  return frame;
}

ApiAnswer AnswerRequest(std::string_view line, const ApiFrame* frame) {
  // The checks above are the defence; this is the last line of it: whatever escapes them (an
  // allocation failure while rendering, a library's surprise) costs this request, no more.
  try {
    return Answer(line, frame);
  } catch (const std::exception& e) {
    return {.line = ErrorLine(fmt::format("internal error answering the request: {}",
                                          SanitizeName(e.what(), 200)))};
  }
}

std::string UpdateLine(const ApiFrame& f) {
  json cpus = json::array();
  for (const CpuTotals& c : f.totals.cpus) cpus.push_back(api::CpuJson(c));
  return Dump({{"event", "update"},
               {"seq", f.seq},
               {"realtime_ns", f.realtime_ns},
               {"data",
                {{"at_ns", f.totals.at_ns},
                 {"domains", AllDomains(f, LatestPointers(f))},
                 {"cpus", std::move(cpus)},
                 {"health", HealthWithReconcile(f)}}}});
}

std::string ErrorLine(std::string_view what) {
  return Dump(ErrorJson(what));
}

}  // namespace xenbaked::publish
