// A test double for xenbaked::Hypervisor: page-aligned private buffers laid out as Xen's, a
// writer that follows xen/common/trace.c's placement rules (WRAP padding at the end of the data
// area, drop when full, an eventfd raised on a crossing of half full), and knobs to break things
// (bogus prod, bogus cons).
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "tracefmt/ring.h"
#include "xenbaked/hypervisor.h"

namespace xenbaked::testing {

class FakeHypervisor final : public Hypervisor {
 public:
  FakeHypervisor(std::vector<uint32_t> cpu_ids, uint32_t pages, uint64_t cpu_khz = 1'000'000)
      : cpu_ids_(std::move(cpu_ids)), pages_(pages), cpu_khz_(cpu_khz) {
    efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    for (size_t i = 0; i < cpu_ids_.size(); ++i) {
      auto* mem = static_cast<std::byte*>(std::aligned_alloc(4096, pages * 4096));
      std::memset(mem, 0, pages * 4096);
      memory_.emplace_back(mem, &std::free);
      rings_.emplace_back(cpu_ids_[i], std::span<std::byte>(mem, pages * 4096));
    }
  }
  ~FakeHypervisor() override { ::close(efd_); }

  std::string_view name() const override { return "fake"; }
  tracefmt::Result<PhysInfo> GetPhysInfo() override {
    uint32_t max_id = 0;
    for (uint32_t c : cpu_ids_) max_id = std::max(max_id, c);
    return PhysInfo{static_cast<uint32_t>(cpu_ids_.size()), max_id, cpu_khz_};
  }
  tracefmt::Result<TraceBuffers> EnableTracing(const TraceSetup& setup) override {
    setup_ = setup;
    // As Xen: the masks are set before the buffers are enabled, and stay set if enabling fails.
    if (setup.event_mask != 0) event_mask = setup.event_mask;
    if (!setup.cpu_mask.empty()) cpu_mask = setup.cpu_mask;
    if (!enable_error.empty())
      return tracefmt::MakeError(tracefmt::ErrorCode::kUnsupported, enable_error);
    enabled_ = true;
    ++enable_calls;
    return TraceBuffers{pages_, rings_};
  }
  tracefmt::Result<uint32_t> GetEventMask() override {
    if (!event_mask_error.empty())
      return tracefmt::MakeError(tracefmt::ErrorCode::kUnsupported, event_mask_error);
    return event_mask;
  }
  tracefmt::Status SetEventMask(uint32_t mask) override {
    event_mask = mask;
    return {};
  }
  tracefmt::Status SetCpuMask(const std::vector<uint32_t>& cpus) override {
    cpu_mask = cpus;
    return {};
  }
  int EventFd() const override { return efd_; }
  tracefmt::Status AckEvent() override {
    uint64_t value;
    if (::read(efd_, &value, sizeof value) == sizeof value) ++acks;
    return {};
  }
  tracefmt::Status DisableTracing() override {
    enabled_ = false;
    ++disable_calls;
    return {};
  }
  tracefmt::Result<std::vector<DomainInfo>> ListDomains() override {
    ++list_domains_calls;
    return std::vector<DomainInfo>{{.domid = 0, .name = "Domain-0"}};
  }
  // xenstore's names: a domain absent here has none (yet). Every call counts as one read.
  tracefmt::Result<std::string> DomainName(uint32_t domid) override {
    ++name_lookups;
    auto it = domain_names.find(domid);
    if (it == domain_names.end())
      return tracefmt::MakeError(tracefmt::ErrorCode::kNotFound, "no name");
    return it->second;
  }
  // The CPUs with a ring, plus any a test brought online later (they have no ring, as on Xen).
  tracefmt::Result<std::vector<uint32_t>> OnlineCpus() override {
    if (!online_error.empty())
      return tracefmt::MakeError(tracefmt::ErrorCode::kUnsupported, online_error);
    std::vector<uint32_t> online = cpu_ids_;
    online.insert(online.end(), online_later.begin(), online_later.end());
    std::sort(online.begin(), online.end());
    return online;
  }

  // --- producer side --------------------------------------------------------------------------
  uint32_t data_size() const { return pages_ * 4096 - 8; }
  const CpuRing& ring(size_t index) const { return rings_[index]; }
  // Appends a record with a TSC and `words` extra words, as Xen would. False when dropped.
  bool Write(size_t index, uint32_t event, uint64_t tsc, std::vector<uint32_t> words = {}) {
    tracefmt::Record rec;
    rec.event = event;
    rec.has_tsc = true;
    rec.tsc = tsc;
    rec.extra_words = static_cast<uint8_t>(words.size());
    std::copy(words.begin(), words.end(), rec.extra.begin());
    return Put(index, rec);
  }
  bool Put(size_t index, const tracefmt::Record& rec) {
    const CpuRing& r = rings_[index];
    const uint32_t ds = data_size();
    uint32_t prod = r.LoadProd();
    const uint32_t cons = r.LoadCons();
    const uint32_t before = tracefmt::RingUnconsumed(ds, cons, prod);
    const uint32_t to_end = ds - prod % ds;
    const uint32_t pad = rec.SizeBytes() > to_end ? to_end : 0;
    if (before + pad + rec.SizeBytes() > ds) {
      ++dropped;
      return false;
    }
    std::byte* data = r.buffer().data() + 8;
    if (pad) {  // a WRAP record fills the bytes to the end (header + TSC + up to 7 words)
      tracefmt::Record wrap;
      wrap.event = tracefmt::ev::kWrapBuffer;
      wrap.has_tsc = pad >= 12;
      wrap.tsc = rec.tsc;
      wrap.extra_words = static_cast<uint8_t>((pad - (wrap.has_tsc ? 12 : 4)) / 4);
      tracefmt::EncodeRecord(wrap, std::span<std::byte>(data + prod % ds, pad));
      prod = Advance(prod, pad);
    }
    tracefmt::EncodeRecord(rec, std::span<std::byte>(data + prod % ds, rec.SizeBytes()));
    prod = Advance(prod, rec.SizeBytes());
    SetProd(index, prod);
    const uint32_t after = tracefmt::RingUnconsumed(ds, cons, prod);
    if (before < ds / 2 && after >= ds / 2) Raise();
    return true;
  }
  void SetProd(size_t index, uint32_t prod) {
    std::atomic_ref<uint32_t>(reinterpret_cast<uint32_t*>(rings_[index].buffer().data())[1])
        .store(prod, std::memory_order_release);
  }
  void Raise() {
    const uint64_t one = 1;
    ssize_t n = ::write(efd_, &one, sizeof one);
    (void)n;
  }

  bool enabled_ = false;
  TraceSetup setup_;
  int enable_calls = 0;
  int disable_calls = 0;
  int acks = 0;
  uint64_t dropped = 0;
  std::map<uint32_t, std::string> domain_names = {{0, "Domain-0"}};
  int name_lookups = 0;
  int list_domains_calls = 0;
  std::vector<uint32_t> online_later;  // online CPUs without a ring (came online after enable)
  std::string online_error;            // non-empty: OnlineCpus() fails with it
  // The host's trace masks as they stand (Xen's defaults: every class, every CPU).
  uint32_t event_mask = 0x0ffff000;
  std::vector<uint32_t> cpu_mask;  // empty: every CPU
  std::string event_mask_error;    // non-empty: GetEventMask() fails with it
  std::string enable_error;        // non-empty: EnableTracing() fails after setting masks

 private:
  uint32_t Advance(uint32_t p, uint32_t n) const {
    const uint64_t next = uint64_t{p} + n;
    return static_cast<uint32_t>(next >= 2ull * data_size() ? next - 2ull * data_size() : next);
  }
  std::vector<uint32_t> cpu_ids_;
  uint32_t pages_;
  uint64_t cpu_khz_;
  int efd_ = -1;
  std::vector<std::unique_ptr<std::byte, decltype(&std::free)>> memory_;
  std::vector<CpuRing> rings_;
};

}  // namespace xenbaked::testing
