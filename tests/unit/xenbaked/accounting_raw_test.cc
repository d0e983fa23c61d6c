// AccountingEngine::AddRaw (records read in place, fed by MergedTraceReader::ForEach) and
// AccountingEngine::AddAll against AccountingEngine::Add (decoded records from
// MergedTraceReader::Next): the same snapshot, field for field, and the same final records, on the
// real captures and on generated ones that mix every event the engine looks at with short records,
// records without a TSC and damage.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tracefmt/events.h"
#include "tracefmt/merge.h"
#include "tracefmt/testing/trace_builder.h"
#include "tracefmt/trace_file.h"
#include "xenbaked/accounting.h"
#include "xenbaked/windows.h"

namespace xenbaked {
namespace {

namespace ev = tracefmt::ev;

std::string Flatten(const DomainTotals& d) {
  std::string out = fmt::format(
      "dom {} inst {} destroyed {} seen {}..{} run {} wait {} blk {} off {} disp {} slices {} "
      "{}/{}/{} alloc {} x{} wakes {} blocks {} hc {} io {} lost {}\n",
      d.domid, d.instance, d.destroyed, d.first_seen_ns, d.last_seen_ns, d.running_ns,
      d.runnable_ns, d.blocked_ns, d.offline_ns, d.dispatches, d.run_slices, d.slice_min_ns,
      d.slice_sum_ns, d.slice_max_ns, d.allocated_ns, d.allocations, d.wakes, d.blocks,
      d.hypercalls, d.io_records, d.lost_records);
  for (const VcpuTotals& v : d.vcpus) {
    out += fmt::format("  vcpu {} seen {} {} {} {} {} disp {} wakes {} blocks {} state {} cpu {}\n",
                       v.vcpu, v.seen, v.running_ns, v.runnable_ns, v.blocked_ns, v.offline_ns,
                       v.dispatches, v.wakes, v.blocks, static_cast<int>(v.state), v.last_cpu);
  }
  return out;
}

std::string Flatten(const AccountingSnapshot& s) {
  std::string out =
      fmt::format("at {} records {} lost {} anomalies {} ({} {} {} {}) tsc {} khz {}\n", s.at_ns,
                  s.records, s.lost_records, s.anomalies, s.anomaly_kinds.runstate_mismatch,
                  s.anomaly_kinds.switch_mismatch, s.anomaly_kinds.bad_id,
                  s.anomaly_kinds.time_backwards, s.tsc, s.cpu_khz);
  for (const DomainTotals& d : s.domains) out += Flatten(d);
  for (const CpuTotals& c : s.cpus) {
    out += fmt::format(
        "cpu {} records {} tsc {}..{} elapsed {} accounted {} lost {} gap {} unknown {} wrap {} "
        "hc {} io {} unattributed {}\n",
        c.cpu, c.records, c.first_tsc, c.last_tsc, c.elapsed_ns, c.accounted_ns, c.lost_records,
        c.lost_gap_ns, c.unknown_start_ns, c.wrap_records, c.hypercalls, c.io_records,
        c.unattributed);
  }
  return out;
}

struct Outcome {
  std::string snapshot;
  std::string finals;
  uint64_t records = 0;
};

// Runs an engine over `file`, fed by `feed(engine, merged)`.
template <typename Feed>
Outcome Account(std::span<const std::byte> bytes, Feed feed) {
  tracefmt::TraceFileReader file = tracefmt::TraceFileReader::FromBytes(bytes);
  AccountingEngine engine({.cpu_khz = 2596120});
  Outcome o;
  engine.OnFinal([&](const DomainTotals& d) { o.finals += Flatten(d); });
  tracefmt::MergedTraceReader merged(file);
  feed(engine, merged);
  o.snapshot = Flatten(engine.Snapshot(engine.now_tsc()));
  o.records = engine.records();
  return o;
}

void ExpectSameAccounting(std::span<const std::byte> bytes, const std::string& what) {
  const Outcome by_next = Account(bytes, [](AccountingEngine& e, tracefmt::MergedTraceReader& m) {
    tracefmt::MergedRecord r;
    while (m.Next(r)) e.Add(r);
    e.EndOfInput();
  });
  const Outcome by_raw = Account(bytes, [](AccountingEngine& e, tracefmt::MergedTraceReader& m) {
    m.ForEach(
        [&](uint32_t cpu, uint64_t tsc, tracefmt::RecordRef rec) { e.AddRaw(cpu, tsc, rec); });
    e.EndOfInput();
  });
  const Outcome by_all =
      Account(bytes, [](AccountingEngine& e, tracefmt::MergedTraceReader& m) { e.AddAll(m); });
  for (const Outcome* fast : {&by_raw, &by_all}) {
    EXPECT_EQ(by_next.records, fast->records) << what;
    EXPECT_EQ(by_next.snapshot, fast->snapshot) << what;
    EXPECT_EQ(by_next.finals, fast->finals) << what;
  }
}

// One record of a mix of everything the engine handles, with few domains and vCPUs so that
// state builds up, data words sometimes fewer than the event needs, sometimes no TSC.
tracefmt::Record RandomRecord(std::mt19937& rng, uint64_t tsc) {
  static constexpr uint32_t kEvents[] = {ev::kWake,
                                         ev::kBlock,
                                         ev::kSwitchInfNext,
                                         ev::kSwitchInfPrev,
                                         ev::kDomAdd,
                                         ev::kDomRem,
                                         ev::kDom0DomAdd,
                                         ev::kDom0DomRem,
                                         ev::kLostRecords,
                                         ev::kWrapBuffer,
                                         ev::kPvHypercall,
                                         ev::kPvHypercallV2,
                                         ev::kPvHypercallSubcall,
                                         ev::kPvPageFault,
                                         ev::kHvmIoRead,
                                         ev::kHvmIomemWrite,
                                         ev::kMemPageGrantMap,
                                         ev::kHvmCpuid,
                                         ev::kCsched2Tick,
                                         ev::kSwitch,
                                         ev::kContinueRunning};
  tracefmt::Record r;
  r.has_tsc = rng() % 12 != 0;
  r.tsc = r.has_tsc ? tsc : 0;
  const uint32_t pick = rng() % 30;
  auto who = [&] { return (rng() % 4) << 16 | rng() % 3; };  // vcpu | domain << 16
  if (pick < 9) {
    r.event = ev::kRunstateChange | (rng() % 4) << 8 | (rng() % 4) << 4;
    r.extra_words = 1;
    r.extra[0] = rng() % 50 == 0 ? ev::kIdleDomain << 16 : who();
  } else {
    r.event = kEvents[rng() % std::size(kEvents)];
    r.extra_words = static_cast<uint8_t>(rng() % 6 == 0 ? rng() % 8 : 4);
    r.extra[0] = rng() % 4;  // a domain, or a count
    r.extra[1] = rng() % 3;
    r.extra[2] = static_cast<uint32_t>(tsc - rng() % 1000);
    r.extra[3] = rng() % 5 == 0 ? ev::kNoTimeLimit : rng() % 100000;
    if (tracefmt::IsHypercallEvent(r.event)) r.extra[0] = rng() % 3 == 0 ? 20 | 1u << 20 : 32;
    if (r.event == ev::kLostRecords) r.extra[1] = who();
    for (uint32_t w = 4; w < r.extra_words; ++w) r.extra[w] = static_cast<uint32_t>(rng());
  }
  return r;
}

// A record AccountingEngine only counts (no scheduler, GEN or dom0-op event): hypercalls with
// and without their data word, I/O by event id, and records the engine ignores.
tracefmt::Record RandomCountedRecord(std::mt19937& rng, uint64_t tsc) {
  static constexpr uint32_t kEvents[] = {
      ev::kPvHypercall, ev::kPvHypercallV2,  ev::kPvHypercallSubcall, ev::kPvPageFault,
      ev::kHvmIoRead,   ev::kHvmIoportWrite, ev::kHvmIomemWrite,      ev::kMemPageGrantMap,
      ev::kHvmCpuid,    ev::kCsched2Tick,    ev::kMemPageGrantUnmap};
  tracefmt::Record r;
  r.has_tsc = rng() % 16 != 0;
  r.tsc = r.has_tsc ? tsc : 0;
  r.event = kEvents[rng() % std::size(kEvents)];
  r.extra_words = static_cast<uint8_t>(rng() % 8);
  for (uint32_t w = 0; w < r.extra_words; ++w) r.extra[w] = static_cast<uint32_t>(rng());
  if (r.extra_words > 0 && rng() % 2 == 0) r.extra[0] = (rng() % 2 == 0 ? 20 : 32) | 1u << 20;
  return r;
}

// `counted_share` in 100 of the records come from RandomCountedRecord: at 95, runs of dozens of
// records between two the engine dispatches, as in a real capture.
std::vector<std::byte> RandomCapture(std::mt19937& rng, uint32_t counted_share = 0) {
  const uint32_t cpus = 1 + rng() % 3;
  std::vector<uint64_t> tsc(cpus, 1'000'000);
  tracefmt::testing::TraceBuilder t;
  const uint32_t chunks = 1 + rng() % 30;
  for (uint32_t n = 0; n < chunks; ++n) {
    const uint32_t cpu = n < cpus ? n : rng() % cpus;
    std::vector<std::byte> data;
    const uint32_t records = rng() % (counted_share > 0 ? 400 : 60);
    for (uint32_t i = 0; i < records; ++i) {
      tsc[cpu] += rng() % 4 == 0 ? 0 : rng() % 5000;
      const bool counted = rng() % 100 < counted_share;
      tracefmt::testing::AppendRecord(
          data, counted ? RandomCountedRecord(rng, tsc[cpu]) : RandomRecord(rng, tsc[cpu]));
    }
    t.RawChunk(cpu, data, static_cast<uint32_t>(data.size()));
  }
  if (rng() % 5 == 0) t.Truncate(rng() % (t.bytes().size() + 1));
  return t.bytes();
}

TEST(AccountingRawTest, GeneratedCapturesAccountAlikeByBothPaths) {
  std::mt19937 rng(4);
  for (int i = 0; i < 300; ++i) {
    ExpectSameAccounting(RandomCapture(rng), "generated capture " + std::to_string(i));
    if (::testing::Test::HasFailure()) return;
  }
}

// AddAll takes the records between two dispatched ones as one run, at the first one's place in
// the merged order (MergedTraceReader::ForEachRun). Long runs on several CPUs, with domains
// destroyed and ids reused while another CPU's run is pending, must still account as one record
// at a time does.
TEST(AccountingRawTest, LongRunsOfCountedRecordsAccountAlikeByBothPaths) {
  std::mt19937 rng(5);
  for (int i = 0; i < 300; ++i) {
    ExpectSameAccounting(RandomCapture(rng, 95), "generated capture " + std::to_string(i));
    if (::testing::Test::HasFailure()) return;
  }
}

// The daemon's path: each chunk pushed to a LiveMerger as the drain would, runs emitted up to the
// watermark into WindowedAccounting::TakeRun. Every window and the totals must equal those of
// WindowedAccounting::Add fed one record at a time in merged order.
std::string WindowsOf(const WindowHistory& history) {
  std::string out = Flatten(history.totals());
  for (size_t li = 0; li < history.length_count(); ++li) {
    for (const Window& w : history.windows(li))
      out += fmt::format("window {} #{} from {}\n", w.length_ns, w.index, w.start_ns) +
             Flatten(w.delta);
  }
  return out;
}

void ExpectSameWindows(std::span<const std::byte> bytes, const std::string& what) {
  const WindowConfig config{.lengths_ns = {100'000, 350'000}, .history = 1000};
  std::string by_record;
  std::string by_run;
  std::string finals_by_record;
  std::string finals_by_run;
  {
    tracefmt::TraceFileReader file = tracefmt::TraceFileReader::FromBytes(bytes);
    tracefmt::MergedTraceReader merged(file);
    AccountingEngine engine({.cpu_khz = 2596120});
    WindowHistory history(config);
    WindowedAccounting acct(engine, history,
                            [&](const DomainTotals& d) { finals_by_record += Flatten(d); });
    tracefmt::MergedRecord m;
    while (merged.Next(m)) acct.Add(m);
    engine.EndOfInput();
    acct.Flush();
    by_record = WindowsOf(history);
  }
  {
    tracefmt::TraceFileReader file = tracefmt::TraceFileReader::FromBytes(bytes);
    AccountingEngine engine({.cpu_khz = 2596120});
    WindowHistory history(config);
    WindowedAccounting acct(engine, history,
                            [&](const DomainTotals& d) { finals_by_run += Flatten(d); });
    struct Runs {
      WindowedAccounting& acct;
      tracefmt::RunTaken Take(const tracefmt::RunOffer& offer) { return acct.TakeRun(offer); }
    } runs{acct};
    tracefmt::LiveMerger merger;
    // Per CPU in the file: the newest TSC pushed. A drain knows every CPU from the start, as the
    // file merge does.
    std::map<uint32_t, uint64_t> last_tsc;
    tracefmt::Chunk chunk;
    while (file.Next(chunk)) last_tsc[chunk.cpu] = 0;
    file.Rewind();
    while (file.Next(chunk)) {
      tracefmt::RecordCursor cursor(chunk.bytes);
      tracefmt::Record rec;
      uint64_t& newest = last_tsc[chunk.cpu];
      while (cursor.Next(rec)) {
        merger.Push(chunk.cpu, rec);
        if (rec.has_tsc) newest = rec.tsc;
      }
      uint64_t watermark = ~uint64_t{0};
      for (const auto& [cpu, tsc] : last_tsc) watermark = std::min(watermark, tsc);
      merger.EmitRunsUpTo(watermark, runs);
    }
    merger.EmitRunsUpTo(~uint64_t{0}, runs);
    engine.EndOfInput();
    acct.Flush();
    by_run = WindowsOf(history);
  }
  EXPECT_EQ(by_record, by_run) << what;
  EXPECT_EQ(finals_by_record, finals_by_run) << what;
}

TEST(AccountingRawTest, DaemonRunsGiveTheWindowsOfOneRecordAtATime) {
  std::mt19937 rng(6);
  for (int i = 0; i < 300; ++i) {
    const std::vector<std::byte> capture = RandomCapture(rng, i % 2 == 0 ? 95 : 0);
    ExpectSameWindows(capture, "generated capture " + std::to_string(i));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(AccountingRawTest, RealCapturesAccountAlikeByBothPaths) {
  const std::string data = XENBAKED_SHARED_DATA;
  for (const char* name : {"xen-4.17-qemu/trace-all.bin", "xen-4.17-qemu/trace-sched.bin",
                           "xen-4.17-qemu-guests/trace-sched.bin"}) {
    const std::string path = data + "/" + name;
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
    auto file = tracefmt::TraceFileReader::Open(path);
    ASSERT_TRUE(file.ok()) << path;
    ExpectSameAccounting(file->bytes(), name);
  }
}

}  // namespace
}  // namespace xenbaked
