// tracefmt/clock.h — TSC ticks to nanoseconds.
//
// Xen time-stamps records with the CPU's TSC. The hypervisor reports its frequency through
// xc_physinfo's cpu_khz; a xentrace file carries none, so offline tools take --cpu-khz or the
// sidecar file our own tools write beside a capture (`<capture>.meta`).
//
//   TscClock clock(/*cpu_khz=*/2596120);
//   uint64_t ns = clock.ToNs(tsc_delta);
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tracefmt/result.h"

namespace tracefmt {

class TscClock {
 public:
  explicit TscClock(uint64_t cpu_khz);
  uint64_t cpu_khz() const { return khz_; }
  // Exact: floor(ticks * 1e6 / cpu_khz), for any tick count whose result fits in 64 bits.
  uint64_t ToNs(uint64_t ticks) const {
    const unsigned __int128 whole_ms = ticks / khz_;  // ticks per millisecond is khz
    return static_cast<uint64_t>(whole_ms * 1000000 + ticks % khz_ * 1000000 / khz_);
  }
  uint64_t ToTicks(uint64_t ns) const;

 private:
  uint64_t khz_;
};

// The sidecar written beside a capture: "<capture>.meta", lines "key value".
struct CaptureMeta {
  uint64_t cpu_khz = 0;
  uint32_t tbuf_pages = 0;  // 0 when unknown
  uint32_t event_mask = 0;  // 0 when unknown
  std::string producer;     // "xenbaked 0.1.0", "xenbake-sim 0.1.0", ...
};
std::string SidecarPath(const std::string& capture_path);
Status WriteCaptureMeta(const std::string& capture_path, const CaptureMeta& meta);
// Not found is an Error with kNotFound; a malformed file is kCorrupt with the line's offset.
Result<CaptureMeta> ReadCaptureMeta(const std::string& capture_path);

// The TSC frequencies a --cpu-khz option takes: 1 kHz to 100 GHz. Anything else is a typo or an
// attack, and a frequency that overflows would turn every time into nonsense.
inline constexpr uint64_t kMinCpuKhz = 1;
inline constexpr uint64_t kMaxCpuKhz = 100'000'000;

// cpu_khz from an explicit option (non-zero wins) or else the sidecar; an Error a person can act
// on when neither gives one.
Result<uint64_t> ResolveCpuKhz(uint64_t option_khz, const std::string& capture_path);

}  // namespace tracefmt
