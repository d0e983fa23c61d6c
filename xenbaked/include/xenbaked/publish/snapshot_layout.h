// xenbaked/publish/snapshot_layout.h — the shared-memory snapshot's binary layout (version 1.1),
// shared by the daemon's SnapshotWriter and the SnapshotReader that xenbake-top uses. The full
// table is in xenbaked/docs/shm-layout.md; this header is its single source in code.
//
// The region is: a 256-byte header, the health block, `domain_capacity` domain records, then
// `cpu_capacity` CPU records. Every field is a little-endian integer at an offset the header
// states; records are read at the stride the header gives, so a newer minor version may make them
// longer (new fields at the end) without breaking readers. Readers treat every byte as untrusted:
// they copy the region out under the sequence lock and decode the copy with bounds checks.
//
// The sequence lock (header byte 64) is even when the data is consistent. The writer makes it
// odd, writes, makes it even; a reader copies, then checks the sequence did not change. All
// copies in and out are 8-byte atomic words, so there is no data race on any byte.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tracefmt/result.h"
#include "xenbaked/publish/publish_view.h"

namespace xenbaked::publish::shm {

inline constexpr std::array<char, 8> kMagic = {'X', 'B', 'A', 'K', 'S', 'H', 'M', '\0'};
inline constexpr uint16_t kMajor = 1;
inline constexpr uint16_t kMinor = 1;  // 1.1: unknown time appended to the domain record
inline constexpr size_t kWindowSlots = 2;  // the first two configured window lengths
inline constexpr size_t kNameBytes = 64;   // NUL-padded, sanitised UTF-8

// Header byte offsets. Offsets 0..63 never change after the region is created; the rest are
// written under the sequence lock.
inline constexpr size_t kOffMagic = 0;
inline constexpr size_t kOffMajor = 8;            // u16
inline constexpr size_t kOffMinor = 10;           // u16
inline constexpr size_t kOffHeaderBytes = 12;     // u32
inline constexpr size_t kOffDomainBytes = 16;     // u32, one domain record
inline constexpr size_t kOffCpuBytes = 20;        // u32, one CPU record
inline constexpr size_t kOffHealthBytes = 24;     // u32
inline constexpr size_t kOffWindowSlots = 28;     // u32
inline constexpr size_t kOffRegionBytes = 32;     // u64
inline constexpr size_t kOffDomainCapacity = 40;  // u32
inline constexpr size_t kOffCpuCapacity = 44;     // u32
inline constexpr size_t kOffHealth = 48;          // u32 offset of the health block
inline constexpr size_t kOffDomains = 52;         // u32 offset of domain record 0
inline constexpr size_t kOffCpus = 56;            // u32 offset of CPU record 0
inline constexpr size_t kOffSeq = 64;             // u64 sequence lock
inline constexpr size_t kOffState = 72;           // u64 RegionState
inline constexpr size_t kOffPublishMonotonicNs = 80;
inline constexpr size_t kOffPublishRealtimeNs = 88;
inline constexpr size_t kOffPeriodNs = 96;
inline constexpr size_t kOffPublishCount = 104;
inline constexpr size_t kOffDomainCount = 112;  // u32
inline constexpr size_t kOffCpuCount = 116;     // u32
inline constexpr size_t kOffTotalsAtNs = 120;
inline constexpr size_t kOffWindowLengthNs = 128;  // u64 × kWindowSlots
inline constexpr size_t kOffWindowStartNs = 144;   // u64 × kWindowSlots
inline constexpr size_t kOffWindowEndNs = 160;     // u64 × kWindowSlots
inline constexpr size_t kHeaderBytes = 256;
inline constexpr size_t kStaticHeaderBytes = 64;

enum class RegionState : uint64_t {
  kRunning = 1,
  kStopped = 2,     // the daemon shut down cleanly; the figures are its last
  kSuperseded = 3,  // the daemon moved to a larger region at the same path: reopen it
};

// Per CPU: the same six figures for totals and each window.
struct CpuFigures {
  uint64_t records = 0;
  uint64_t elapsed_ns = 0;
  uint64_t accounted_ns = 0;
  uint64_t lost_records = 0;
  uint64_t lost_gap_ns = 0;
  uint64_t capture_ratio_ppm = 0;  // accounted / (elapsed − lost gap), millionths
  bool operator==(const CpuFigures&) const = default;
};

struct DomainEntry {
  uint32_t domid = 0;
  uint32_t vcpus = 0;
  uint64_t instance = 0;
  bool destroyed = false;
  std::array<bool, kWindowSlots> in_window{};  // alive in that window (its figures are valid)
  std::string name;
  uint64_t first_seen_ns = 0;
  uint64_t last_seen_ns = 0;
  uint64_t slice_min_ns = 0;  // life so far
  uint64_t slice_max_ns = 0;
  DomainCounters totals;
  std::array<DomainCounters, kWindowSlots> windows;
  // Since 1.1 (0 in a 1.0 region): time the trace cannot vouch for, over the vCPUs, since first
  // seen and in each window slot. Each state's true time lies within [its figure, + unknown].
  uint64_t unknown_ns = 0;
  std::array<uint64_t, kWindowSlots> window_unknown_ns{};
  bool operator==(const DomainEntry&) const = default;
};

struct CpuEntry {
  uint32_t cpu = 0;
  bool has_accounting = false;
  bool has_buffer = false;  // the health figures below are valid
  CpuFigures totals;
  std::array<CpuFigures, kWindowSlots> windows;
  uint64_t buffer_bytes = 0;
  uint64_t fill_bytes = 0;
  uint64_t peak_fill_bytes = 0;
  uint64_t drained_records = 0;
  uint64_t drained_bytes = 0;
  uint64_t lost_records = 0;  // as the drain loop counted them
  uint64_t anomalies = 0;
  uint64_t budget_hits = 0;
  bool operator==(const CpuEntry&) const = default;
};

struct HealthEntry {
  std::string backend;  // up to 16 bytes
  uint64_t start_unix_ns = 0;
  uint64_t uptime_ns = 0;
  uint64_t last_drain_unix_ns = 0;
  uint64_t cpu_khz = 0;
  uint64_t pages_per_cpu = 0;
  uint64_t event_mask = 0;
  uint64_t wakes_irq = 0;
  uint64_t wakes_timer = 0;
  uint64_t wakes_repost = 0;
  uint64_t passes = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t records_per_s_milli = 0;  // records/s × 1000
  uint64_t lost_records = 0;
  uint64_t anomalies = 0;
  uint64_t late_records = 0;
  uint64_t merger_pending = 0;
  uint64_t capture_bytes = 0;
  uint64_t capture_errors = 0;
  uint64_t capture_chunks_lost = 0;
  uint64_t publish_errors = 0;
  LatencyHistogram drain_latency;
  bool operator==(const HealthEntry&) const = default;
};

struct Heartbeat {
  uint64_t seq = 0;
  RegionState state = RegionState::kRunning;
  uint64_t publish_monotonic_ns = 0;
  uint64_t publish_realtime_ns = 0;
  uint64_t period_ns = 0;
  uint64_t publish_count = 0;
};

// One consistent reading of the region.
struct Snapshot {
  uint16_t minor = 0;
  Heartbeat heartbeat;
  uint64_t totals_at_ns = 0;
  std::array<uint64_t, kWindowSlots> window_length_ns{};
  std::array<uint64_t, kWindowSlots> window_start_ns{};  // 0/0 until the window first closes
  std::array<uint64_t, kWindowSlots> window_end_ns{};
  HealthEntry health;
  std::vector<DomainEntry> domains;  // ascending domid
  std::vector<CpuEntry> cpus;        // ascending cpu
};

// Sizes of this version's blocks (a reader accepts larger ones from a newer minor).
size_t DomainRecordBytes();
// A 1.0 domain record: this version's without the unknown-time fields, which then read 0.
size_t DomainRecordBytesV1_0();
size_t CpuRecordBytes();
size_t HealthBytes();

struct Geometry {
  uint32_t domain_capacity = 0;
  uint32_t cpu_capacity = 0;
  uint32_t header_bytes = kHeaderBytes;
  uint32_t domain_bytes = 0;
  uint32_t cpu_bytes = 0;
  uint32_t health_bytes = 0;
  uint32_t health_offset = 0;
  uint32_t domains_offset = 0;
  uint32_t cpus_offset = 0;
  uint64_t region_bytes = 0;  // a multiple of 8
};
// This version's geometry for the given capacities.
Geometry MakeGeometry(uint32_t domain_capacity, uint32_t cpu_capacity);
// Reads and checks the static header (magic, version, sizes, offsets within `region_bytes`).
tracefmt::Result<Geometry> ParseStaticHeader(std::span<const std::byte> region);

// Writes the static header of `geometry` into `image` (at least kHeaderBytes).
void EncodeStaticHeader(const Geometry& geometry, std::span<std::byte> image);
// Writes everything but the static header and the sequence word into `image` (sized
// geometry.region_bytes). Domains and CPUs beyond the capacities are left out (the writer grows
// the region first). Returns the bytes of `image` that hold data (a prefix).
size_t EncodeDynamic(const PublishView& view, RegionState state, uint64_t publish_count,
                     const Geometry& geometry, std::span<std::byte> image);
// Decodes a copy of a region (untrusted): every count and offset is checked against `copy`.
tracefmt::Result<Snapshot> DecodeRegion(std::span<const std::byte> copy, const Geometry& geometry);

}  // namespace xenbaked::publish::shm
