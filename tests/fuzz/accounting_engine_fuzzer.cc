// libFuzzer target over the accounting engine: crafted streams of the records it acts on
// (runstate changes, lost-records reports, domain creation and destruction, wakes, switches,
// anything else) with hostile ids, TSCs that jump and go backwards, snapshots in between. It checks
// invariants, not just the absence of crashes:
//  - memory follows the records given (EngineStateSizes), not the largest id a record names;
//  - every published total only grows from one snapshot to the next (per domain incarnation and
//    per vCPU: running, runnable, blocked, offline, unknown);
//  - after EndOfInput a vCPU's five figures add up to no more than the engine's elapsed time.
//
// Each 8 bytes of input make one record: a CPU, a TSC step, a kind, a domain, a vCPU.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>

#include "../unit/xenbaked/accounting_test_util.h"
#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "xenbaked/accounting.h"

namespace {

using xenbaked::testing::MakeRecord;
namespace ev = tracefmt::ev;
using xenbaked::AccountingSnapshot;

// Aborts with the line of the invariant that broke, for the reproducer's report.
#define Check(condition)                                                               \
  do {                                                                                 \
    if (!(condition)) {                                                                \
      std::fprintf(stderr, "invariant broken at line %d: %s\n", __LINE__, #condition); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (false)

using Key = std::tuple<uint32_t, uint64_t, uint32_t>;  // domid, instance, vCPU
using Times = std::array<uint64_t, 5>;

// The totals only grow between snapshots of one engine.
void CheckGrowth(const AccountingSnapshot& s, std::map<Key, Times>& last) {
  for (const xenbaked::DomainTotals& d : s.domains) {
    for (const xenbaked::VcpuTotals& v : d.vcpus) {
      const Times now{v.running_ns, v.runnable_ns, v.blocked_ns, v.offline_ns, v.unknown_ns};
      Times& before = last[{d.domid, d.instance, v.vcpu}];
      for (size_t i = 0; i < now.size(); ++i) Check(now[i] >= before[i]);
      before = now;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xenbaked::AccountingEngine engine({.cpu_khz = 1'000'000});
  std::map<Key, Times> last;
  uint64_t tsc = 1'000;
  uint64_t records = 0;
  for (size_t at = 0; at + 8 <= size; at += 8) {
    const uint8_t* p = data + at;
    const uint32_t cpu = p[0] & 0x80 ? p[0] * 131u : p[0] & 7u;  // mostly few CPUs, some wild
    // Mostly forward, sometimes a jump, sometimes backwards (skew, hostile input).
    const int64_t step = p[1] < 200 ? p[1] : p[1] < 250 ? int64_t{p[1]} << 12 : -int64_t{p[1]};
    tsc = static_cast<uint64_t>(static_cast<int64_t>(tsc) + step);
    const uint32_t domid = p[3] & 0x80 ? (uint32_t{p[3]} << 8 | p[4]) : p[3] & 7u;
    const uint32_t vcpu = p[5] & 0x80 ? (uint32_t{p[5]} << 8 | p[6]) : p[5] & 3u;
    const uint32_t from = p[2] & 3u;
    const uint32_t to = (p[2] >> 2) & 3u;
    tracefmt::Record rec;
    switch (p[2] >> 4) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
        rec = MakeRecord(ev::kRunstateChange | from << 8 | to << 4, {vcpu | domid << 16}, tsc);
        break;
      case 6:
        rec =
            MakeRecord(ev::kLostRecords,
                       {p[7], domid | vcpu << 16, static_cast<uint32_t>(tsc - p[7] * 16u), 0}, tsc);
        break;
      case 7:
        rec = MakeRecord(ev::kDomAdd, {domid}, tsc);
        break;
      case 8:
        rec = MakeRecord(ev::kDomRem, {domid}, tsc);
        break;
      case 9:
        rec = MakeRecord(ev::kDom0DomRem, {domid}, tsc);
        break;
      case 10:
        rec = MakeRecord(ev::kWake, {domid, vcpu}, tsc);
        break;
      case 11:
        rec = MakeRecord(ev::kSwitchInfNext, {domid, vcpu, p[7], p[6]}, tsc);
        break;
      case 12:
        rec = MakeRecord(ev::kPvHypercallV2, {p[7]}, tsc);
        break;
      default:
        rec = MakeRecord(uint32_t{p[6]} << 24 | uint32_t{p[7]} << 8 | p[2], {p[4], p[5]}, tsc);
        break;
    }
    engine.Add(cpu, tsc, rec);
    ++records;
    if (p[7] == 0x5a) CheckGrowth(engine.Snapshot(engine.now_tsc()), last);
  }
  // The domid table, CPU states up to the largest CPU id, and about a kilobyte per record.
  const xenbaked::EngineStateSizes sizes = engine.StateSizes();
  Check(sizes.vcpu_states <= 4 * records + 4);
  Check(sizes.bytes <= 200'000 + (xenbaked::kMaxCpuId + 1) * 512 + 1'500 * records);
  engine.EndOfInput();
  const AccountingSnapshot end = engine.Snapshot(engine.now_tsc());
  CheckGrowth(end, last);
  for (const xenbaked::DomainTotals& d : end.domains) {
    for (const xenbaked::VcpuTotals& v : d.vcpus) {
      const uint64_t sum =
          v.running_ns + v.runnable_ns + v.blocked_ns + v.offline_ns + v.unknown_ns;
      Check(sum <= end.at_ns + 5);  // per-bucket rounding at most a nanosecond each
    }
  }
  return 0;
}
