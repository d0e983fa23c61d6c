// Rendering of records and summaries for xenbake-dump: deterministic text (fit for golden files)
// and JSON. Pure functions of their arguments, so tests can check them without files.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tracefmt/clock.h"
#include "tracefmt/merge.h"
#include "tracefmt/summary.h"

namespace dom0tools {

// One line, no newline:
//   off=<file offset> cpu=<n> tsc=<tsc|-> [ns=<ns>] <event label> <field=value ...|words=...>
std::string RecordText(const tracefmt::MergedRecord& m, const tracefmt::TscClock* clock);
// One JSON object: off, cpu, tsc (null without one), ns (with a clock), event (hex), name (when
// known), class, fields (decoded, when the layout is known) and data (the raw words).
nlohmann::ordered_json RecordJson(const tracefmt::MergedRecord& m, const tracefmt::TscClock* clock);

std::string SummaryText(const tracefmt::TraceSummary& s, std::string_view path,
                        const tracefmt::TscClock* clock);
nlohmann::ordered_json SummaryJson(const tracefmt::TraceSummary& s, std::string_view path,
                                   const tracefmt::TscClock* clock);

}  // namespace dom0tools
