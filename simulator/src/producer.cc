#include "simulator/producer.h"

#include <algorithm>
#include <cstring>

#include "tracefmt/events.h"
#include "tracefmt/ring.h"

namespace simulator {

using tracefmt::ErrorCode;
using tracefmt::MakeError;
using tracefmt::Record;

TraceProducer::TraceProducer(TraceMemory& memory, HighWaterListener* listener,
                             ProducedRecordObserver* observer)
    : memory_(memory),
      listener_(listener),
      observer_(observer),
      cpus_(memory.nr_cpu_ids()),
      cpu_mask_(memory.nr_cpu_ids(), true) {}

tracefmt::Status TraceProducer::SetSize(uint32_t pages) {
  if (auto st = memory_.Allocate(pages); !st) return st;
  enabled_ = true;  // alloc_trace_bufs ends with tb_init_done = 1
  return {};
}

tracefmt::Status TraceProducer::Enable() {
  if (!memory_.allocated()) return MakeError(ErrorCode::kInvalidArgument, "no trace buffers");
  enabled_ = true;
  bogus_ = false;
  return {};
}

void TraceProducer::Disable() {
  enabled_ = false;
  // Xen clears lost_records so that no phantom loss is reported when tracing starts again.
  for (CpuState& cpu : cpus_) {
    cpu.stats.dropped_cleared += cpu.stats.pending_lost;
    cpu.stats.pending_lost = 0;
  }
}

void TraceProducer::SetCpuMask(std::span<const uint8_t> bitmap) {
  for (uint32_t cpu = 0; cpu < cpu_mask_.size(); ++cpu)
    cpu_mask_[cpu] = cpu / 8 < bitmap.size() && ((bitmap[cpu / 8] >> (cpu % 8)) & 1u) != 0;
}

TbufInfo TraceProducer::GetInfo() const {
  TbufInfo info;
  info.event_mask = event_mask_;
  if (memory_.allocated()) {
    info.t_info_first_page = kTInfoFirstPage;
    info.t_info_bytes = memory_.layout().t_info_pages * tracefmt::kXenPageSize;
  }
  return info;
}

void TraceProducer::SetCurrent(uint32_t cpu, uint16_t domain, uint16_t vcpu) {
  if (cpu >= cpus_.size()) return;
  cpus_[cpu].current_domain = domain;
  cpus_[cpu].current_vcpu = vcpu;
}

bool TraceProducer::Admits(uint32_t cpu, uint32_t event) const {
  return tracefmt::EventMaskAdmits(event_mask_, event) && cpu < cpu_mask_.size() && cpu_mask_[cpu];
}

bool TraceProducer::Bogus(uint32_t prod, uint32_t cons) {
  const uint32_t data_size = memory_.data_size();
  if ((prod & 3u) || prod >= 2 * data_size || (cons & 3u) || cons >= 2 * data_size) {
    enabled_ = false;  // tb_init_done = 0
    bogus_ = true;
    return true;
  }
  return false;
}

// calc_unconsumed_bytes: a bogus pointer reads as a full buffer (and turns tracing off).
uint32_t TraceProducer::UnconsumedChecked(uint32_t cpu) {
  const uint32_t prod = memory_.LoadProd(cpu);
  const uint32_t cons = memory_.LoadCons(cpu);
  if (Bogus(prod, cons)) return memory_.data_size();
  return tracefmt::RingUnconsumed(memory_.data_size(), cons, prod);
}

// calc_bytes_to_wrap for a valid prod: bytes left before the end of the data area.
uint32_t TraceProducer::BytesToWrap(uint32_t prod) const {
  const uint32_t data_size = memory_.data_size();
  return prod < data_size ? data_size - prod : 2 * data_size - prod;
}

TraceProducer::Placement TraceProducer::DryRun(uint32_t cpu, uint32_t prod, uint32_t cons,
                                               uint32_t rec_size) {
  const uint32_t data_size = memory_.data_size();
  Placement out;
  if (Bogus(prod, cons)) return out;  // everything reads as full: the record is lost
  const uint32_t unconsumed = tracefmt::RingUnconsumed(data_size, cons, prod);
  out.started_below_highwater = unconsumed < tracefmt::RingHighWater(data_size);
  const uint32_t available = data_size - unconsumed;
  uint32_t to_wrap = BytesToWrap(prod);
  uint32_t total = 0;
  if (cpus_[cpu].stats.pending_lost != 0) {
    if (kLostRecordBytes > to_wrap) {
      total += to_wrap;
      to_wrap = data_size;
    }
    total += kLostRecordBytes;
    to_wrap -= kLostRecordBytes;
    if (to_wrap == 0) to_wrap = data_size;  // the LOST record ends exactly at the wrap
  }
  if (rec_size > to_wrap) total += to_wrap;
  total += rec_size;
  out.fits = total <= available;
  return out;
}

uint32_t TraceProducer::Publish(uint32_t cpu, uint32_t prod, uint32_t size) {
  const uint32_t data_size = memory_.data_size();
  const std::span<std::byte> data = memory_.CpuData(cpu);
  const uint32_t offset = prod >= data_size ? prod - data_size : prod;
  if (observer_ != nullptr) observer_->OnWritten(cpu, data.subspan(offset, size));
  cpus_[cpu].stats.bytes_written += size;
  uint32_t next = prod + size;
  if (next >= 2 * data_size) next -= 2 * data_size;
  memory_.StoreProd(cpu, next);  // release: the record's bytes are visible before prod moves
  return next;
}

// insert_wrap_record: pads to the end of the data area. Only the header (and TSC, needed when
// more than 7 words would be left) is written; the rest keeps whatever bytes were there.
uint32_t TraceProducer::InsertWrap(uint32_t cpu, uint32_t prod, uint64_t tsc) {
  const uint32_t space_left = BytesToWrap(prod);
  uint32_t extra_bytes = space_left - 4;
  const bool with_tsc = extra_bytes / 4 > tracefmt::kMaxExtraWords;
  if (with_tsc) extra_bytes -= 8;
  const uint32_t data_size = memory_.data_size();
  std::byte* p = memory_.CpuData(cpu).data() + (prod >= data_size ? prod - data_size : prod);
  tracefmt::Store32(p, tracefmt::MakeHeader(tracefmt::ev::kWrapBuffer, extra_bytes / 4, with_tsc));
  if (with_tsc) tracefmt::Store64(p + 4, tsc);
  ++cpus_[cpu].stats.wrap_records;
  return Publish(cpu, prod, space_left);
}

uint32_t TraceProducer::InsertLost(uint32_t cpu, uint32_t prod, uint64_t tsc) {
  CpuState& state = cpus_[cpu];
  Record lost;
  lost.event = tracefmt::ev::kLostRecords;
  lost.has_tsc = true;
  lost.tsc = tsc;
  lost.extra_words = 4;
  lost.extra[0] = static_cast<uint32_t>(state.stats.pending_lost);
  lost.extra[1] = uint32_t{state.current_domain} | (uint32_t{state.current_vcpu} << 16);
  lost.extra[2] = static_cast<uint32_t>(state.stats.first_lost_tsc);
  lost.extra[3] = static_cast<uint32_t>(state.stats.first_lost_tsc >> 32);
  ++state.stats.lost_records_written;
  state.stats.dropped_reported += state.stats.pending_lost;
  state.stats.pending_lost = 0;
  return InsertRecord(cpu, prod, lost);
}

uint32_t TraceProducer::InsertRecord(uint32_t cpu, uint32_t prod, const Record& rec) {
  const uint32_t data_size = memory_.data_size();
  const uint32_t offset = prod >= data_size ? prod - data_size : prod;
  const size_t size = tracefmt::EncodeRecord(rec, memory_.CpuData(cpu).subspan(offset));
  return Publish(cpu, prod, static_cast<uint32_t>(size));
}

void TraceProducer::CountDrop(uint32_t cpu, const Record& rec, uint64_t tsc) {
  CpuTraceStats& stats = cpus_[cpu].stats;
  ++stats.dropped;
  if (stats.pending_lost++ == 0) stats.first_lost_tsc = tsc;  // get_cycles() at the first loss
  if (observer_ != nullptr) observer_->OnDropped(cpu, rec);
}

TraceOutcome TraceProducer::TraceBytes(uint32_t cpu, uint32_t event, uint64_t tsc,
                                       std::span<const std::byte> extra, bool with_tsc) {
  if (!enabled_) return TraceOutcome::kDisabled;
  if (!Admits(cpu, event)) {
    if (cpu < cpus_.size()) ++cpus_[cpu].stats.filtered;
    return TraceOutcome::kFiltered;
  }
  if (!memory_.HasBuffer(cpu)) return TraceOutcome::kNoBuffer;

  Record rec;
  rec.event = event & tracefmt::kHeaderEventMask;
  rec.extra_words =
      static_cast<uint8_t>(std::min<size_t>((extra.size() + 3) / 4, tracefmt::kMaxExtraWords));
  rec.has_tsc = with_tsc;
  rec.tsc = with_tsc ? tsc : 0;
  if (!extra.empty())  // an empty span may have a null data(): memcpy must not see it
    std::memcpy(rec.extra.data(), extra.data(),
                std::min<size_t>(extra.size(), 4u * rec.extra_words));

  // prod and cons are read once, as Xen's helpers each read them once; the consumer only ever
  // moves cons forward, so a later read could only find more room.
  uint32_t prod = memory_.LoadProd(cpu);
  const uint32_t cons = memory_.LoadCons(cpu);
  const uint32_t rec_size = rec.SizeBytes();
  const Placement placement = DryRun(cpu, prod, cons, rec_size);
  if (!placement.fits) {
    CountDrop(cpu, rec, tsc);
    return TraceOutcome::kDropped;
  }

  const uint32_t data_size = memory_.data_size();
  uint32_t to_wrap = BytesToWrap(prod);
  if (cpus_[cpu].stats.pending_lost != 0) {
    if (kLostRecordBytes > to_wrap) {
      prod = InsertWrap(cpu, prod, tsc);
      to_wrap = data_size;
    }
    prod = InsertLost(cpu, prod, tsc);
    to_wrap -= kLostRecordBytes;
    if (to_wrap == 0) to_wrap = data_size;
  }
  if (rec_size > to_wrap) prod = InsertWrap(cpu, prod, tsc);
  InsertRecord(cpu, prod, rec);
  ++cpus_[cpu].stats.records_written;

  if (placement.started_below_highwater &&
      UnconsumedChecked(cpu) >= tracefmt::RingHighWater(data_size)) {
    ++cpus_[cpu].stats.notifications;
    if (listener_ != nullptr) listener_->OnHighWater(cpu);
  }
  return TraceOutcome::kWritten;
}

TraceOutcome TraceProducer::Trace(uint32_t cpu, uint32_t event, uint64_t tsc,
                                  std::span<const uint32_t> words, bool with_tsc) {
  return TraceBytes(cpu, event, tsc, std::as_bytes(words), with_tsc);
}

}  // namespace simulator
