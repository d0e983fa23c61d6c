// xenbaked/log.h — the daemon's diagnostic log: leveled lines to one sink.
//
// Lines go to stderr by default, prefixed with the syslog priority in sd-daemon form ("<4>") when
// stderr is the journal, so journald files them at the right level. Tests pass a sink that keeps
// the lines. A RateLimit lets a noisy condition (ring anomalies, a full disk) log a few lines per
// interval while every occurrence is still counted elsewhere.
//
//   Logger log(LogLevel::kInfo);
//   log.Warn("cpu {}: ring anomaly {}", cpu, name);
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace xenbaked {

enum class LogLevel : uint8_t { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };
std::optional<LogLevel> ParseLogLevel(std::string_view text);  // "error", "warning", ... "debug"
std::string_view LogLevelName(LogLevel level);

class Logger {
 public:
  using Sink = std::function<void(LogLevel, std::string_view)>;
  // Writes to stderr; `journal_prefix` adds "<N>" priorities.
  explicit Logger(LogLevel level = LogLevel::kInfo, bool journal_prefix = false);
  Logger(LogLevel level, Sink sink) : level_(level), sink_(std::move(sink)) {}

  LogLevel level() const { return level_; }
  void set_level(LogLevel level) { level_ = level; }
  bool Enabled(LogLevel level) const { return level <= level_; }

  template <typename... Args>
  void Log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
    if (Enabled(level)) sink_(level, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Error(fmt::format_string<Args...> f, Args&&... args) {
    Log(LogLevel::kError, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Warn(fmt::format_string<Args...> f, Args&&... args) {
    Log(LogLevel::kWarning, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Notice(fmt::format_string<Args...> f, Args&&... args) {
    Log(LogLevel::kNotice, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> f, Args&&... args) {
    Log(LogLevel::kInfo, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Debug(fmt::format_string<Args...> f, Args&&... args) {
    Log(LogLevel::kDebug, f, std::forward<Args>(args)...);
  }

 private:
  LogLevel level_;
  Sink sink_;
};

// At most `burst` lines per `interval_ns`; Allow() says whether this occurrence may log.
class RateLimit {
 public:
  RateLimit(uint32_t burst, uint64_t interval_ns) : burst_(burst), interval_ns_(interval_ns) {}
  bool Allow(uint64_t now_ns) {
    if (now_ns - window_start_ns_ >= interval_ns_ || !started_) {
      started_ = true;
      window_start_ns_ = now_ns;
      used_ = 0;
    }
    return used_ < burst_ ? (++used_, true) : false;
  }

 private:
  uint32_t burst_;
  uint64_t interval_ns_;
  uint64_t window_start_ns_ = 0;
  uint32_t used_ = 0;
  bool started_ = false;
};

}  // namespace xenbaked
