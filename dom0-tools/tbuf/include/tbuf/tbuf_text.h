// tbuf/tbuf_text.h — what xenbake-tbuf parses and prints, kept pure for tests.
//
//   ParseCpuList("0-3,6")        -> {0, 1, 2, 3, 6}
//   ParseCpuList("0x0f")         -> {0, 1, 2, 3}      (a hex bitmap, bit n = CPU n)
//   FormatCpuList({0, 1, 2, 6})  -> "0-2,6"
//   DescribeEventMask(0x0002f000) -> "0x0002f000 (SCHED)"
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tbuf/trace_buffer_control.h"

namespace xenbake::tbuf {

inline constexpr uint32_t kMaxCpuId = 65535;

// A CPU list ("0-3,6", ids ascending and unique in the result), "all" (every CPU up to
// `max_cpu_id`), or a hex bitmap ("0x0f"). nullopt when malformed or an id is above kMaxCpuId.
std::optional<std::vector<uint32_t>> ParseCpuList(std::string_view text, uint32_t max_cpu_id);
std::string FormatCpuList(std::span<const uint32_t> cpus);

// Pages per CPU: a positive decimal number no larger than Xen accepts (the t_info offsets are
// 16-bit, so far below this bound in practice).
std::optional<uint32_t> ParsePages(std::string_view text);

// "0x0002f000 (SCHED)", "0x0ffff000 (all)", "0x00021000 (SCHED, subclasses 0x1)".
std::string DescribeEventMask(uint32_t mask);

// The state as `xenbake-tbuf show` prints it, and as JSON (--json).
std::string FormatState(const TraceBufferState& state);
nlohmann::json StateJson(const TraceBufferState& state);

}  // namespace xenbake::tbuf
