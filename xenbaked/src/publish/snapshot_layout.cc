#include "xenbaked/publish/snapshot_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "tracefmt/record.h"

namespace xenbaked::publish::shm {

using tracefmt::ErrorCode;
using tracefmt::Load32;
using tracefmt::Load64;
using tracefmt::MakeError;
using tracefmt::Store32;
using tracefmt::Store64;

namespace {

// Each block's fields are listed once, in Fields() below, and walked by either of these two: the
// writer's and the reader's order can never disagree.
class BlockWriter {
 public:
  static constexpr bool kWriting = true;
  explicit BlockWriter(std::span<std::byte> out) : out_(out) {}
  void U32(uint32_t& v) { Put(v); }
  void U64(uint64_t& v) { Put(v); }
  void Text(std::string& s, size_t bytes) {
    std::memset(out_.data() + pos_, 0, bytes);
    std::memcpy(out_.data() + pos_, s.data(), std::min(s.size(), bytes - 1));
    pos_ += bytes;
  }
  size_t pos() const { return pos_; }
  bool ok() const { return true; }

 private:
  template <typename T>
  void Put(T v) {
    std::memcpy(out_.data() + pos_, &v, sizeof v);
    pos_ += sizeof v;
  }
  std::span<std::byte> out_;
  size_t pos_ = 0;
};

class BlockReader {
 public:
  static constexpr bool kWriting = false;
  explicit BlockReader(std::span<const std::byte> in) : in_(in) {}
  void U32(uint32_t& v) { Get(v); }
  void U64(uint64_t& v) { Get(v); }
  void Text(std::string& s, size_t bytes) {
    if (!Fits(bytes)) return;
    const char* p = reinterpret_cast<const char*>(in_.data() + pos_);
    s = SanitizeName(std::string_view(p, strnlen(p, bytes)), bytes - 1);
    pos_ += bytes;
  }
  size_t pos() const { return pos_; }
  bool ok() const { return ok_; }

 private:
  bool Fits(size_t n) {
    ok_ = ok_ && in_.size() - pos_ >= n && pos_ <= in_.size();
    return ok_;
  }
  template <typename T>
  void Get(T& v) {
    if (!Fits(sizeof v)) return;
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Packs flags on the way out, unpacks them on the way in.
template <typename Io>
void Flags(Io& io, std::initializer_list<bool*> bits) {
  uint64_t word = 0;
  if constexpr (Io::kWriting) {
    for (size_t i = 0; bool* b : bits) word |= uint64_t{*b} << i++;
  }
  io.U64(word);
  if constexpr (!Io::kWriting) {
    for (size_t i = 0; bool* b : bits) *b = (word >> i++) & 1;
  }
}

template <typename Io>
void Fields(Io& io, DomainCounters& c) {
  for (auto member : DomainCounters::kFields) io.U64(c.*member);
}

template <typename Io>
void Fields(Io& io, CpuFigures& f) {
  io.U64(f.records);
  io.U64(f.elapsed_ns);
  io.U64(f.accounted_ns);
  io.U64(f.lost_records);
  io.U64(f.lost_gap_ns);
  io.U64(f.capture_ratio_ppm);
}

template <typename Io>
void Fields(Io& io, DomainEntry& d) {
  io.U32(d.domid);
  io.U32(d.vcpus);
  io.U64(d.instance);
  Flags(io, {&d.destroyed, &d.in_window[0], &d.in_window[1]});
  io.Text(d.name, kNameBytes);
  io.U64(d.first_seen_ns);
  io.U64(d.last_seen_ns);
  io.U64(d.slice_min_ns);
  io.U64(d.slice_max_ns);
  Fields(io, d.totals);
  for (DomainCounters& w : d.windows) Fields(io, w);
  // Appended in 1.1: a 1.0 reader reads records at the header's stride and never sees these.
  io.U64(d.unknown_ns);
  for (uint64_t& w : d.window_unknown_ns) io.U64(w);
}

template <typename Io>
void Fields(Io& io, CpuEntry& c) {
  uint32_t flags = 0;
  if constexpr (Io::kWriting) flags = uint32_t{c.has_accounting} | uint32_t{c.has_buffer} << 1;
  io.U32(c.cpu);
  io.U32(flags);
  c.has_accounting = flags & 1;
  c.has_buffer = (flags >> 1) & 1;
  Fields(io, c.totals);
  for (CpuFigures& w : c.windows) Fields(io, w);
  io.U64(c.buffer_bytes);
  io.U64(c.fill_bytes);
  io.U64(c.peak_fill_bytes);
  io.U64(c.drained_records);
  io.U64(c.drained_bytes);
  io.U64(c.lost_records);
  io.U64(c.anomalies);
  io.U64(c.budget_hits);
}

template <typename Io>
void Fields(Io& io, HealthEntry& h) {
  io.Text(h.backend, 16);
  for (uint64_t* v : {&h.start_unix_ns,
                      &h.uptime_ns,
                      &h.last_drain_unix_ns,
                      &h.cpu_khz,
                      &h.pages_per_cpu,
                      &h.event_mask,
                      &h.wakes_irq,
                      &h.wakes_timer,
                      &h.wakes_repost,
                      &h.passes,
                      &h.records,
                      &h.bytes,
                      &h.records_per_s_milli,
                      &h.lost_records,
                      &h.anomalies,
                      &h.late_records,
                      &h.merger_pending,
                      &h.capture_bytes,
                      &h.capture_errors,
                      &h.capture_chunks_lost,
                      &h.publish_errors}) {
    io.U64(*v);
  }
  LatencyHistogram& l = h.drain_latency;
  io.U64(l.count);
  io.U64(l.sum_ns);
  io.U64(l.min_ns);
  io.U64(l.max_ns);
  for (uint64_t& b : l.buckets) io.U64(b);
}

template <typename Entry>
size_t BlockBytes() {
  static const size_t bytes = [] {
    Entry e;
    std::vector<std::byte> scratch(1 << 12);
    BlockWriter w(scratch);
    Fields(w, e);
    return w.pos();
  }();
  return bytes;
}

uint64_t Ppm(uint64_t part, uint64_t whole) {
  if (whole == 0) return 1'000'000;
  return uint64_t(static_cast<double>(part) / static_cast<double>(whole) * 1e6 + 0.5);
}

CpuFigures FiguresOf(const CpuTotals& c) {
  const uint64_t explained = c.elapsed_ns > c.lost_gap_ns ? c.elapsed_ns - c.lost_gap_ns : 0;
  return {.records = c.records,
          .elapsed_ns = c.elapsed_ns,
          .accounted_ns = c.accounted_ns,
          .lost_records = c.lost_records,
          .lost_gap_ns = c.lost_gap_ns,
          .capture_ratio_ppm = Ppm(c.accounted_ns, explained)};
}

DomainEntry EntryOf(const DomainTotals& d, const std::vector<LatestWindow>& windows,
                    const DomainNames& names) {
  DomainEntry e;
  e.domid = d.domid;
  e.vcpus = uint32_t(d.vcpus.size());
  e.instance = d.instance;
  e.destroyed = d.destroyed;
  e.name = DomainName(names, d.domid, kNameBytes - 1);
  e.first_seen_ns = d.first_seen_ns;
  e.last_seen_ns = d.last_seen_ns;
  e.slice_min_ns = d.slice_min_ns;
  e.slice_max_ns = d.slice_max_ns;
  e.totals = DomainCounters::Of(d);
  e.unknown_ns = d.unknown_ns;
  for (size_t i = 0; i < kWindowSlots && i < windows.size(); ++i) {
    if (const DomainTotals* w = windows[i].Domain(d.domid, d.instance)) {
      e.in_window[i] = true;
      e.windows[i] = DomainCounters::Of(*w);
      e.window_unknown_ns[i] = w->unknown_ns;
    }
  }
  return e;
}

// CPUs known to the engine or to the drain loop, merged by id.
std::vector<CpuEntry> CpuEntries(const PublishView& view,
                                 const std::vector<LatestWindow>& windows) {
  std::map<uint32_t, CpuEntry> by_id;
  for (const CpuTotals& c : view.totals.cpus) {
    CpuEntry& e = by_id[c.cpu];
    e.cpu = c.cpu;
    e.has_accounting = true;
    e.totals = FiguresOf(c);
    for (size_t i = 0; i < kWindowSlots && i < windows.size(); ++i) {
      if (const CpuTotals* w = windows[i].Cpu(c.cpu)) e.windows[i] = FiguresOf(*w);
    }
  }
  for (const CpuHealth& h : view.health.cpus) {
    CpuEntry& e = by_id[h.cpu];
    e.cpu = h.cpu;
    e.has_buffer = true;
    e.buffer_bytes = h.buffer_bytes;
    e.fill_bytes = h.fill_bytes;
    e.peak_fill_bytes = h.peak_fill_bytes;
    e.drained_records = h.records;
    e.drained_bytes = h.bytes;
    e.lost_records = h.lost_records;
    e.anomalies = h.anomalies;
    e.budget_hits = h.budget_hits;
  }
  std::vector<CpuEntry> out;
  out.reserve(by_id.size());
  for (auto& [id, e] : by_id) out.push_back(std::move(e));
  return out;
}

HealthEntry HealthOf(const DaemonHealth& h) {
  return {.backend = h.backend,
          .start_unix_ns = h.start_unix_ns,
          .uptime_ns = h.uptime_ns,
          .last_drain_unix_ns = h.last_drain_unix_ns,
          .cpu_khz = h.cpu_khz,
          .pages_per_cpu = h.pages_per_cpu,
          .event_mask = h.event_mask,
          .wakes_irq = h.wakes_irq,
          .wakes_timer = h.wakes_timer,
          .wakes_repost = h.wakes_repost,
          .passes = h.passes,
          .records = h.records,
          .bytes = h.bytes,
          .records_per_s_milli = uint64_t(std::max(0.0, h.records_per_s) * 1000.0),
          .lost_records = h.lost_records,
          .anomalies = h.anomalies,
          .late_records = h.late_records,
          .merger_pending = h.merger_pending,
          .capture_bytes = h.capture_bytes,
          .capture_errors = h.capture_errors,
          .capture_chunks_lost = h.capture_chunks_lost,
          .publish_errors = h.publish_errors,
          .drain_latency = h.drain_latency};
}

template <typename Entry>
void EncodeAt(Entry entry, std::span<std::byte> image, size_t offset, size_t bytes) {
  BlockWriter w(image.subspan(offset, bytes));
  Fields(w, entry);
}

template <typename Entry>
bool DecodeAt(Entry& entry, std::span<const std::byte> copy, size_t offset, size_t bytes) {
  if (offset > copy.size() || copy.size() - offset < bytes) return false;
  BlockReader r(copy.subspan(offset, bytes));
  Fields(r, entry);
  return r.ok();
}

}  // namespace

size_t DomainRecordBytes() {
  return BlockBytes<DomainEntry>();
}
size_t DomainRecordBytesV1_0() {
  return DomainRecordBytes() - 8 * (1 + kWindowSlots);
}
size_t CpuRecordBytes() {
  return BlockBytes<CpuEntry>();
}
size_t HealthBytes() {
  return BlockBytes<HealthEntry>();
}

Geometry MakeGeometry(uint32_t domain_capacity, uint32_t cpu_capacity) {
  Geometry g;
  g.domain_capacity = domain_capacity;
  g.cpu_capacity = cpu_capacity;
  g.domain_bytes = uint32_t(DomainRecordBytes());
  g.cpu_bytes = uint32_t(CpuRecordBytes());
  g.health_bytes = uint32_t(HealthBytes());
  g.health_offset = kHeaderBytes;
  g.domains_offset = g.health_offset + g.health_bytes;
  g.cpus_offset = g.domains_offset + g.domain_bytes * domain_capacity;
  g.region_bytes = uint64_t{g.cpus_offset} + uint64_t{g.cpu_bytes} * cpu_capacity;
  return g;
}

void EncodeStaticHeader(const Geometry& g, std::span<std::byte> image) {
  std::memcpy(image.data() + kOffMagic, kMagic.data(), kMagic.size());
  std::byte* p = image.data();
  const uint16_t major = kMajor;
  const uint16_t minor = kMinor;
  std::memcpy(p + kOffMajor, &major, 2);
  std::memcpy(p + kOffMinor, &minor, 2);
  Store32(p + kOffHeaderBytes, g.header_bytes);
  Store32(p + kOffDomainBytes, g.domain_bytes);
  Store32(p + kOffCpuBytes, g.cpu_bytes);
  Store32(p + kOffHealthBytes, g.health_bytes);
  Store32(p + kOffWindowSlots, uint32_t(kWindowSlots));
  Store64(p + kOffRegionBytes, g.region_bytes);
  Store32(p + kOffDomainCapacity, g.domain_capacity);
  Store32(p + kOffCpuCapacity, g.cpu_capacity);
  Store32(p + kOffHealth, g.health_offset);
  Store32(p + kOffDomains, g.domains_offset);
  Store32(p + kOffCpus, g.cpus_offset);
}

tracefmt::Result<Geometry> ParseStaticHeader(std::span<const std::byte> region) {
  if (region.size() < kHeaderBytes) {
    return MakeError(ErrorCode::kTruncated,
                     fmt::format("region is {} bytes, smaller than its {}-byte header",
                                 region.size(), kHeaderBytes),
                     0);
  }
  if (std::memcmp(region.data(), kMagic.data(), kMagic.size()) != 0) {
    return MakeError(ErrorCode::kCorrupt, "not a xenbaked snapshot (bad magic)", 0);
  }
  const std::byte* p = region.data();
  uint16_t major = 0;
  uint16_t minor = 0;
  std::memcpy(&major, p + kOffMajor, 2);
  std::memcpy(&minor, p + kOffMinor, 2);
  if (major != kMajor) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("snapshot layout version {}.{}, this reader reads {}.x", major, minor, kMajor),
        kOffMajor);
  }
  Geometry g;
  g.header_bytes = Load32(p + kOffHeaderBytes);
  g.domain_bytes = Load32(p + kOffDomainBytes);
  g.cpu_bytes = Load32(p + kOffCpuBytes);
  g.health_bytes = Load32(p + kOffHealthBytes);
  g.region_bytes = Load64(p + kOffRegionBytes);
  g.domain_capacity = Load32(p + kOffDomainCapacity);
  g.cpu_capacity = Load32(p + kOffCpuCapacity);
  g.health_offset = Load32(p + kOffHealth);
  g.domains_offset = Load32(p + kOffDomains);
  g.cpus_offset = Load32(p + kOffCpus);
  const uint32_t slots = Load32(p + kOffWindowSlots);
  if (g.header_bytes < kHeaderBytes || g.domain_bytes < DomainRecordBytesV1_0() ||
      g.cpu_bytes < CpuRecordBytes() || g.health_bytes < HealthBytes() || slots < kWindowSlots) {
    return MakeError(ErrorCode::kUnsupported,
                     fmt::format("snapshot {}.{} has blocks smaller than this reader expects "
                                 "(domain {} < {}, cpu {} < {} or health {} < {})",
                                 major, minor, g.domain_bytes, DomainRecordBytesV1_0(), g.cpu_bytes,
                                 CpuRecordBytes(), g.health_bytes, HealthBytes()),
                     kOffHeaderBytes);
  }
  const auto ends_within = [&g](uint64_t offset, uint64_t count, uint64_t bytes) {
    return offset <= g.region_bytes && count * bytes <= g.region_bytes - offset;
  };
  if (!ends_within(g.health_offset, 1, g.health_bytes) ||
      !ends_within(g.domains_offset, g.domain_capacity, g.domain_bytes) ||
      !ends_within(g.cpus_offset, g.cpu_capacity, g.cpu_bytes) || g.region_bytes % 8 != 0) {
    return MakeError(ErrorCode::kCorrupt, "snapshot header offsets run past the region",
                     kOffRegionBytes);
  }
  if (region.size() < g.region_bytes) {
    return MakeError(
        ErrorCode::kTruncated,
        fmt::format("region is {} bytes, its header says {}", region.size(), g.region_bytes),
        kOffRegionBytes);
  }
  g.header_bytes = kHeaderBytes;  // a larger header's extra bytes are not ours to read
  return g;
}

size_t EncodeDynamic(const PublishView& view, RegionState state, uint64_t publish_count,
                     const Geometry& g, std::span<std::byte> image) {
  const std::vector<LatestWindow> windows = LatestWindows(view.windows);
  std::byte* p = image.data();
  Store64(p + kOffState, uint64_t(state));
  Store64(p + kOffPublishMonotonicNs, view.monotonic_ns);
  Store64(p + kOffPublishRealtimeNs, view.realtime_ns);
  Store64(p + kOffPeriodNs, view.period_ns);
  Store64(p + kOffPublishCount, publish_count);
  Store64(p + kOffTotalsAtNs, view.totals.at_ns);
  for (size_t i = 0; i < kWindowSlots; ++i) {
    const bool have = i < windows.size();
    Store64(p + kOffWindowLengthNs + 8 * i, have ? windows[i].length_ns() : 0);
    Store64(p + kOffWindowStartNs + 8 * i, have ? windows[i].start_ns() : 0);
    Store64(p + kOffWindowEndNs + 8 * i, have ? windows[i].end_ns() : 0);
  }
  EncodeAt(HealthOf(view.health), image, g.health_offset, g.health_bytes);

  const uint32_t domains =
      uint32_t(std::min<size_t>(view.totals.domains.size(), g.domain_capacity));
  for (uint32_t i = 0; i < domains; ++i) {
    EncodeAt(EntryOf(view.totals.domains[i], windows, view.names), image,
             g.domains_offset + size_t{i} * g.domain_bytes, g.domain_bytes);
  }
  std::vector<CpuEntry> cpus = CpuEntries(view, windows);
  const uint32_t cpu_count = uint32_t(std::min<size_t>(cpus.size(), g.cpu_capacity));
  for (uint32_t i = 0; i < cpu_count; ++i) {
    EncodeAt(std::move(cpus[i]), image, g.cpus_offset + size_t{i} * g.cpu_bytes, g.cpu_bytes);
  }
  Store32(p + kOffDomainCount, domains);
  Store32(p + kOffCpuCount, cpu_count);
  return g.cpus_offset + size_t{cpu_count} * g.cpu_bytes;
}

tracefmt::Result<Snapshot> DecodeRegion(std::span<const std::byte> copy, const Geometry& g) {
  if (copy.size() < kHeaderBytes) {
    return MakeError(ErrorCode::kTruncated, "snapshot copy shorter than its header", 0);
  }
  const std::byte* p = copy.data();
  Snapshot s;
  std::memcpy(&s.minor, p + kOffMinor, 2);
  s.heartbeat.seq = Load64(p + kOffSeq);
  s.heartbeat.state = RegionState(Load64(p + kOffState));
  s.heartbeat.publish_monotonic_ns = Load64(p + kOffPublishMonotonicNs);
  s.heartbeat.publish_realtime_ns = Load64(p + kOffPublishRealtimeNs);
  s.heartbeat.period_ns = Load64(p + kOffPeriodNs);
  s.heartbeat.publish_count = Load64(p + kOffPublishCount);
  s.totals_at_ns = Load64(p + kOffTotalsAtNs);
  for (size_t i = 0; i < kWindowSlots; ++i) {
    s.window_length_ns[i] = Load64(p + kOffWindowLengthNs + 8 * i);
    s.window_start_ns[i] = Load64(p + kOffWindowStartNs + 8 * i);
    s.window_end_ns[i] = Load64(p + kOffWindowEndNs + 8 * i);
  }
  const uint32_t domains = Load32(p + kOffDomainCount);
  const uint32_t cpus = Load32(p + kOffCpuCount);
  if (domains > g.domain_capacity || cpus > g.cpu_capacity) {
    return MakeError(ErrorCode::kCorrupt,
                     fmt::format("snapshot counts {} domains and {} CPUs, room for {} and {}",
                                 domains, cpus, g.domain_capacity, g.cpu_capacity),
                     kOffDomainCount);
  }
  if (!DecodeAt(s.health, copy, g.health_offset, g.health_bytes)) {
    return MakeError(ErrorCode::kTruncated, "snapshot copy ends inside the health block",
                     g.health_offset);
  }
  s.domains.resize(domains);
  // A 1.0 region's domain records stop before the unknown-time fields: each is decoded from a
  // zero-padded copy, so those read 0.
  std::vector<std::byte> padded(g.domain_bytes < DomainRecordBytes() ? DomainRecordBytes() : 0);
  for (uint32_t i = 0; i < domains; ++i) {
    const size_t offset = g.domains_offset + size_t{i} * g.domain_bytes;
    bool ok = false;
    if (padded.empty()) {
      ok = DecodeAt(s.domains[i], copy, offset, g.domain_bytes);
    } else if (offset <= copy.size() && copy.size() - offset >= g.domain_bytes) {
      std::memcpy(padded.data(), copy.data() + offset, g.domain_bytes);
      ok = DecodeAt(s.domains[i], std::span<const std::byte>(padded), 0, padded.size());
    }
    if (!ok) return MakeError(ErrorCode::kTruncated, "snapshot copy ends inside a domain", offset);
  }
  s.cpus.resize(cpus);
  for (uint32_t i = 0; i < cpus; ++i) {
    const size_t offset = g.cpus_offset + size_t{i} * g.cpu_bytes;
    if (!DecodeAt(s.cpus[i], copy, offset, g.cpu_bytes)) {
      return MakeError(ErrorCode::kTruncated, "snapshot copy ends inside a CPU", offset);
    }
  }
  return s;
}

}  // namespace xenbaked::publish::shm
