// Hand-built trace records for the accounting tests.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "tracefmt/events.h"
#include "tracefmt/record.h"

namespace xenbaked::testing {

using tracefmt::Runstate;
namespace ev = tracefmt::ev;
inline constexpr Runstate kRun = Runstate::kRunning;
inline constexpr Runstate kWait = Runstate::kRunnable;
inline constexpr Runstate kBlk = Runstate::kBlocked;
inline constexpr Runstate kOff = Runstate::kOffline;

// 1 GHz: one TSC tick is one nanosecond, so expected times read as the TSCs in the test.
inline constexpr uint64_t kOneGhzKhz = 1'000'000;

inline tracefmt::Record MakeRecord(uint32_t event, std::initializer_list<uint32_t> words,
                                   uint64_t tsc) {
  tracefmt::Record rec;
  rec.event = event;
  rec.has_tsc = true;
  rec.tsc = tsc;
  for (uint32_t w : words) rec.extra[rec.extra_words++] = w;
  return rec;
}

inline tracefmt::Record RunstateChange(uint32_t domid, uint32_t vcpu, Runstate from, Runstate to,
                                       uint64_t tsc) {
  const uint32_t event =
      ev::kRunstateChange | (static_cast<uint32_t>(from) << 8) | (static_cast<uint32_t>(to) << 4);
  return MakeRecord(event, {vcpu | (domid << 16)}, tsc);
}

inline tracefmt::Record LostRecords(uint32_t count, uint16_t domid, uint16_t vcpu,
                                    uint64_t first_tsc, uint64_t tsc) {
  return MakeRecord(ev::kLostRecords,
                    {count, domid | (uint32_t{vcpu} << 16), static_cast<uint32_t>(first_tsc),
                     static_cast<uint32_t>(first_tsc >> 32)},
                    tsc);
}

}  // namespace xenbaked::testing
