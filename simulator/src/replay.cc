#include "simulator/replay.h"

#include <algorithm>
#include <limits>
#include <map>

#include "tracefmt/events.h"
#include "tracefmt/trace_file.h"

namespace simulator {
namespace {

bool IsRingArtefact(uint32_t event) {
  return event == tracefmt::ev::kWrapBuffer || event == tracefmt::ev::kLostRecords;
}

}  // namespace

tracefmt::Result<std::unique_ptr<CaptureReplayer>> CaptureReplayer::Load(const std::string& path,
                                                                         uint64_t cpu_khz,
                                                                         double speed) {
  if (cpu_khz == 0 || !(speed > 0))
    return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument, "cpu_khz and speed > 0");
  auto reader = tracefmt::TraceFileReader::Open(path);
  if (!reader) return reader.error();
  std::unique_ptr<CaptureReplayer> out(new CaptureReplayer());
  out->cpu_khz_ = cpu_khz;
  out->speed_ = speed;
  std::map<uint32_t, CpuStream> streams;
  std::map<uint16_t, uint32_t> vcpus_by_domain;
  std::map<uint32_t, uint64_t> last_tsc;
  tracefmt::Chunk chunk;
  while (reader->Next(chunk)) {
    tracefmt::RecordCursor cursor(chunk.bytes);
    tracefmt::Record rec;
    CpuStream& stream = streams[chunk.cpu];
    stream.cpu = chunk.cpu;
    while (cursor.Next(rec)) {
      if (IsRingArtefact(rec.event)) continue;
      uint64_t& last = last_tsc[chunk.cpu];
      if (rec.has_tsc) last = std::max(last, rec.tsc);  // keep each CPU's stream monotonic
      rec.tsc = rec.has_tsc ? last : rec.tsc;
      if (auto rc = tracefmt::AsRunstateChange(rec);
          rc && rc->domain != tracefmt::ev::kIdleDomain) {
        uint32_t& n = vcpus_by_domain[rc->domain];
        n = std::max<uint32_t>(n, rc->vcpu + 1u);
      }
      stream.records.push_back(rec);
    }
  }
  if (reader->error() && streams.empty()) return *reader->error();
  out->first_tsc_ = std::numeric_limits<uint64_t>::max();
  for (auto& [cpu, stream] : streams) {
    for (const tracefmt::Record& r : stream.records) {
      if (r.has_tsc) {
        out->first_tsc_ = std::min(out->first_tsc_, r.tsc);
        break;
      }
    }
    out->records_total_ += stream.records.size();
    out->streams_.push_back(std::move(stream));
  }
  if (out->streams_.empty())
    return tracefmt::MakeError(tracefmt::ErrorCode::kCorrupt, "capture has no records: " + path);
  if (out->first_tsc_ == std::numeric_limits<uint64_t>::max()) out->first_tsc_ = 0;
  for (const auto& [id, vcpus] : vcpus_by_domain)
    out->domains_.push_back(
        DomainInfo{id, id == 0 ? "Domain-0" : "domain-" + std::to_string(id), vcpus, 0, 0, false});
  return out;
}

std::vector<uint32_t> CaptureReplayer::cpu_ids() const {
  std::vector<uint32_t> ids;
  for (const CpuStream& s : streams_) ids.push_back(s.cpu);
  return ids;
}

uint64_t CaptureReplayer::ReplayNs(uint64_t tsc) const {
  const uint64_t ticks = tsc > first_tsc_ ? tsc - first_tsc_ : 0;
  const auto ns =
      static_cast<double>(static_cast<unsigned __int128>(ticks) * 1'000'000u / cpu_khz_);
  return static_cast<uint64_t>(ns / speed_);
}

void CaptureReplayer::AdvanceTo(uint64_t ns) {
  // Merge by TSC: the CPU whose next record is earliest goes first (ties: lower CPU id).
  for (;;) {
    CpuStream* best = nullptr;
    for (CpuStream& s : streams_) {
      if (s.next == s.records.size()) continue;
      if (best == nullptr || s.records[s.next].tsc < best->records[best->next].tsc) best = &s;
    }
    if (best == nullptr) break;
    const tracefmt::Record& rec = best->records[best->next];
    const uint64_t at = ReplayNs(rec.tsc);
    if (at > ns) break;
    now_ = std::max(now_, at);
    if (producer_ != nullptr)
      producer_->Trace(best->cpu, rec.event, rec.tsc, rec.Data(), rec.has_tsc);
    ++records_emitted_;
    ++best->next;
  }
  now_ = std::max(now_, ns);
}

bool CaptureReplayer::finished() const {
  return std::all_of(streams_.begin(), streams_.end(),
                     [](const CpuStream& s) { return s.next == s.records.size(); });
}

Truth CaptureReplayer::TruthNow() const {
  Truth t;
  t.now_ns = now_;
  t.cpu_khz = cpu_khz_;
  t.records_emitted = records_emitted_;
  for (const CpuStream& s : streams_) t.cpus.push_back(CpuTruthFrom(s.cpu, producer_));
  return t;
}

}  // namespace simulator
