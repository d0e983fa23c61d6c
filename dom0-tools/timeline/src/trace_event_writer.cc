#include "timeline/trace_event_writer.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace xenbake::timeline {

std::string FormatMicros(uint64_t ns) {
  return fmt::format("{}.{:03}", ns / 1000, ns % 1000);
}

std::string JsonString(std::string_view text) {
  // nlohmann escapes control characters and validates UTF-8; `replace` keeps a broken byte from
  // aborting a whole conversion.
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TraceEventWriter::TraceEventWriter(std::FILE* out) : out_(out) {
  buffer_.reserve(kFlushBytes + 1024);
  buffer_ += "{\"traceEvents\":[\n";
}

void TraceEventWriter::Event(std::string_view body) {
  if (events_ != 0) buffer_ += ",\n";
  buffer_ += body;
  ++events_;
  if (buffer_.size() >= kFlushBytes) FlushBuffer();
}

void TraceEventWriter::FlushBuffer() {
  if (!write_failed_ && !buffer_.empty() &&
      std::fwrite(buffer_.data(), 1, buffer_.size(), out_) != buffer_.size()) {
    write_failed_ = true;
    write_errno_ = errno;
  }
  buffer_.clear();
}

void TraceEventWriter::ProcessName(uint32_t pid, std::string_view name) {
  Event(fmt::format(R"({{"ph":"M","pid":{},"name":"process_name","args":{{"name":{}}}}})", pid,
                    JsonString(name)));
}

void TraceEventWriter::ProcessSortIndex(uint32_t pid, int64_t index) {
  Event(
      fmt::format(R"({{"ph":"M","pid":{},"name":"process_sort_index","args":{{"sort_index":{}}}}})",
                  pid, index));
}

void TraceEventWriter::ThreadName(uint32_t pid, uint32_t tid, std::string_view name) {
  Event(fmt::format(R"({{"ph":"M","pid":{},"tid":{},"name":"thread_name","args":{{"name":{}}}}})",
                    pid, tid, JsonString(name)));
}

void TraceEventWriter::ThreadSortIndex(uint32_t pid, uint32_t tid, int64_t index) {
  Event(fmt::format(
      R"({{"ph":"M","pid":{},"tid":{},"name":"thread_sort_index","args":{{"sort_index":{}}}}})",
      pid, tid, index));
}

void TraceEventWriter::Complete(const SliceEvent& s) {
  Event(fmt::format(R"({{"ph":"X","pid":{},"tid":{},"name":{},"cat":{},"ts":{},"dur":{}{}{}}})",
                    s.pid, s.tid, JsonString(s.name), JsonString(s.category), FormatMicros(s.ts_ns),
                    FormatMicros(s.dur_ns), s.args_json.empty() ? "" : ",\"args\":", s.args_json));
}

void TraceEventWriter::Instant(const InstantEvent& i) {
  Event(fmt::format(R"({{"ph":"i","pid":{},"tid":{},"name":{},"cat":{},"ts":{},"s":"{}"{}{}}})",
                    i.pid, i.tid, JsonString(i.name), JsonString(i.category), FormatMicros(i.ts_ns),
                    i.scope, i.args_json.empty() ? "" : ",\"args\":", i.args_json));
}

void TraceEventWriter::Counter(uint32_t pid, std::string_view name, uint64_t ts_ns,
                               std::string_view series, int64_t value) {
  Event(fmt::format(R"({{"ph":"C","pid":{},"name":{},"ts":{},"args":{{{}:{}}}}})", pid,
                    JsonString(name), FormatMicros(ts_ns), JsonString(series), value));
}

tracefmt::Status TraceEventWriter::Finish(const nlohmann::json& other_data) {
  buffer_ += "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":";
  buffer_ += other_data.is_null()
                 ? "{}"
                 : other_data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  buffer_ += "}\n";
  FlushBuffer();
  if (!write_failed_ && std::fflush(out_) != 0) {
    write_failed_ = true;
    write_errno_ = errno;
  }
  if (write_failed_) {
    tracefmt::Error e = tracefmt::MakeError(
        tracefmt::ErrorCode::kIo,
        fmt::format("writing the timeline failed: {}", std::strerror(write_errno_)));
    e.sys_errno = write_errno_;
    return e;
  }
  return tracefmt::Status::Ok();
}

}  // namespace xenbake::timeline
