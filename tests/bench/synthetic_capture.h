// A synthetic xentrace file with the mix of a real `xentrace -e all` capture of a busy PV dom0
// (shared/data/xen-4.17-qemu/trace-all.bin: mostly hypercalls and sub-calls, then page faults and
// PTWR emulation, scheduler and runstate records; about 21 bytes per record), written the way
// xentrace writes: per-CPU chunks of up to 64 KiB, CPUs interleaved, windows sometimes ending in a
// WRAP_BUFFER record and written in two parts.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "tracefmt/result.h"
#include "tracefmt/trace_file.h"

namespace tracefmt::bench {

struct SyntheticSpec {
  uint64_t records = 4'000'000;  // ring records (CPU_CHANGE framing not counted)
  uint32_t cpus = 2;
  uint32_t chunk_bytes = 48 * 1024;  // typical window per chunk
  uint32_t seed = 1;
};

// One CPU's clock and scheduling state while records are made up for it.
struct SyntheticCpu {
  uint32_t cpu = 0;
  uint64_t tsc = 1'000'000'000;
  std::vector<Record> pending;  // the rest of a scheduling sequence being emitted
};

// The records of one context switch on `c`: dom0's vCPU (numbered like the CPU) blocks, the idle
// vCPU runs, dom0's vCPU wakes and runs again. Consistent, so xenalyze's runstate checks pass.
inline void QueueContextSwitch(SyntheticCpu& c) {
  const uint32_t dom0 = c.cpu;                          // vcpu | domain << 16, domain 0
  const uint32_t idle = c.cpu | ev::kIdleDomain << 16;  // the idle domain's vCPU for this CPU
  auto runstate = [](uint32_t from, uint32_t to) {
    return ev::kRunstateChange | from << 8 | to << 4;
  };
  auto rec = [](uint32_t event, std::initializer_list<uint32_t> data) {
    Record r;
    r.event = event;
    r.has_tsc = true;
    for (uint32_t w : data) r.extra[r.extra_words++] = w;
    return r;
  };
  // Emitted back to front (pending is a stack).
  c.pending = {
      rec(ev::kSwitch, {ev::kIdleDomain, c.cpu, 0, c.cpu}),
      rec(ev::kSwitchInfNext, {0, c.cpu, 200, 1000000}),
      rec(runstate(1, 0), {dom0}),
      rec(runstate(0, 1), {idle}),
      rec(ev::kSwitchInfPrev, {ev::kIdleDomain, c.cpu, 50000}),
      rec(ev::kWake, {0, c.cpu}),
      rec(runstate(2, 1), {dom0}),
      rec(ev::kSwitch, {0, c.cpu, ev::kIdleDomain, c.cpu}),
      rec(ev::kSwitchInfNext, {ev::kIdleDomain, c.cpu, 100, ev::kNoTimeLimit}),
      rec(runstate(1, 0), {idle}),
      rec(runstate(0, 2), {dom0}),
      rec(ev::kSwitchInfPrev, {0, c.cpu, 5000}),
      rec(ev::kBlock, {0, c.cpu}),
  };
}

// One record of the mix on CPU `c`, its TSC advanced.
inline Record NextSyntheticRecord(std::mt19937& rng, SyntheticCpu& c) {
  c.tsc += 200 + rng() % 4000;
  if (c.pending.empty() && rng() % 100 < 1) QueueContextSwitch(c);
  if (!c.pending.empty()) {
    Record r = c.pending.back();
    c.pending.pop_back();
    r.tsc = c.tsc;
    return r;
  }
  Record r;
  r.has_tsc = true;
  r.tsc = c.tsc;
  auto words = [&](uint8_t n) {
    r.extra_words = n;
    for (uint8_t i = 0; i < n; ++i) r.extra[i] = static_cast<uint32_t>(rng());
  };
  const uint32_t pick = rng() % 100;
  if (pick < 40) {
    r.event = ev::kPvHypercallV2;
    words(2);
    r.extra[0] = (1 + rng() % 30) | 1u << 20;  // a hypercall number, one 32-bit argument
  } else if (pick < 78) {
    r.event = ev::kPvHypercallSubcall;
    words(1);
    r.extra[0] = 1 + rng() % 30;
  } else if (pick < 86) {
    r.event = ev::kPvPtwrEmulation | ev::k64BitFlag;
    words(6);
  } else if (pick < 91) {
    r.event = ev::kPvPageFault | ev::k64BitFlag;
    words(5);
  } else {
    r.event = ev::SchedClassEvent(ev::kSchedCredit2, 1 + rng() % 20);
    words(rng() % 5);
  }
  return r;
}

// Writes the file; returns the number of ring records written.
inline Result<uint64_t> WriteSyntheticCapture(const std::string& path, const SyntheticSpec& spec) {
  auto writer = TraceFileWriter::Create(path);
  if (!writer) return writer.error();
  std::mt19937 rng(spec.seed);
  std::vector<SyntheticCpu> cpus(spec.cpus);
  for (uint32_t i = 0; i < spec.cpus; ++i) cpus[i].cpu = i;
  std::vector<std::byte> window;
  uint64_t written = 0;
  for (uint32_t cpu = 0; written < spec.records; cpu = (cpu + 1) % spec.cpus) {
    window.clear();
    const uint32_t target = spec.chunk_bytes / 2 + rng() % spec.chunk_bytes;
    while (window.size() + kMaxRecordBytes < target && written < spec.records) {
      const Record r = NextSyntheticRecord(rng, cpus[cpu]);
      const size_t at = window.size();
      window.resize(at + r.SizeBytes());
      EncodeRecord(r, std::span<std::byte>(window).subspan(at));
      ++written;
    }
    const std::span<const std::byte> bytes(window);
    const size_t half = bytes.size() / 2;
    Status s = writer->WriteChunk(cpu, bytes.first(half), bytes.subspan(half));
    if (!s.ok()) return s.error();
  }
  if (Status s = writer->Close(); !s.ok()) return s.error();
  return written;
}

}  // namespace tracefmt::bench
