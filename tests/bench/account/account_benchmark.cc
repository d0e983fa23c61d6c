// Throughput of the accounting engine and of the whole xenbake-account path on a generated
// capture with the mix of a real `xentrace -e all` capture (../synthetic_capture.h). Not part of
// the pass/fail suite; run-account-benchmark.sh runs it with xenalyze beside it.
//
//   account_benchmark [--records=N] [--capture=PATH] [benchmark flags]
//   account_benchmark --generate=PATH [--records=N]    only writes the capture
//
// BM_Merge is the record-by-record merge (file reading, decoding and the merge by TSC) and
// BM_MergeForEach its zero-copy form, the floor under xenbake-account; BM_Engine is the engine
// alone over records already merged in memory; BM_AccountFile is what `xenbake-account` does
// before printing (ForEach + AccountingEngine::AddRaw).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../synthetic_capture.h"
#include "dom0tools/account.h"
#include "tracefmt/merge.h"
#include "tracefmt/trace_file.h"
#include "xenbaked/accounting.h"

namespace {

constexpr uint64_t kCpuKhz = 2596120;
uint64_t g_records = 4'000'000;
std::string g_capture;  // given, or generated once and removed at exit
bool g_generated = false;

const std::string& Capture() {
  if (g_capture.empty()) {
    g_capture = (std::filesystem::temp_directory_path() /
                 ("account-bench-" + std::to_string(::getpid()) + ".bin"))
                    .string();
    tracefmt::bench::SyntheticSpec spec;
    spec.records = g_records;
    auto written = tracefmt::bench::WriteSyntheticCapture(g_capture, spec);
    if (!written) {
      std::fprintf(stderr, "cannot write %s: %s\n", g_capture.c_str(),
                   written.error().Describe().c_str());
      std::exit(1);
    }
    g_generated = true;
  }
  return g_capture;
}

void ReportRecords(benchmark::State& state, uint64_t records_per_iteration) {
  const auto total = static_cast<double>(records_per_iteration * state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(total));
  state.counters["records_per_s"] = benchmark::Counter(total, benchmark::Counter::kIsRate);
  state.counters["ns_per_record"] =
      benchmark::Counter(total, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Merge(benchmark::State& state) {
  auto file = tracefmt::TraceFileReader::Open(Capture());
  if (!file) return state.SkipWithError(file.error().Describe().c_str());
  uint64_t records = 0;
  for (auto _ : state) {
    file->Rewind();
    tracefmt::MergedTraceReader merged(*file);
    tracefmt::MergedRecord m;
    uint64_t checksum = 0;
    records = 0;
    while (merged.Next(m)) {
      checksum += m.rec.event;
      ++records;
    }
    benchmark::DoNotOptimize(checksum);
  }
  ReportRecords(state, records);
}
BENCHMARK(BM_Merge)->Unit(benchmark::kMillisecond);

// The zero-copy merge under xenbake-account (MergedTraceReader::ForEach).
void BM_MergeForEach(benchmark::State& state) {
  auto file = tracefmt::TraceFileReader::Open(Capture());
  if (!file) return state.SkipWithError(file.error().Describe().c_str());
  uint64_t records = 0;
  for (auto _ : state) {
    file->Rewind();
    tracefmt::MergedTraceReader merged(*file);
    uint64_t checksum = 0;
    records = 0;
    merged.ForEach([&](uint32_t, uint64_t, tracefmt::RecordRef rec) {
      checksum += rec.event();
      ++records;
    });
    benchmark::DoNotOptimize(checksum);
  }
  ReportRecords(state, records);
}
BENCHMARK(BM_MergeForEach)->Unit(benchmark::kMillisecond);

// The whole capture merged into memory once (a vector of MergedRecord, ~72 bytes each).
const std::vector<tracefmt::MergedRecord>& MergedInMemory() {
  static const std::vector<tracefmt::MergedRecord> records = [] {
    std::vector<tracefmt::MergedRecord> out;
    auto file = tracefmt::TraceFileReader::Open(Capture());
    if (!file) return out;
    tracefmt::MergedTraceReader merged(*file);
    tracefmt::MergedRecord m;
    while (merged.Next(m)) out.push_back(m);
    return out;
  }();
  return records;
}

// Only walks the in-memory records: the memory-bandwidth floor under BM_Engine.
void BM_WalkInMemory(benchmark::State& state) {
  const std::vector<tracefmt::MergedRecord>& records = MergedInMemory();
  for (auto _ : state) {
    uint64_t checksum = 0;
    for (const tracefmt::MergedRecord& m : records) checksum += m.rec.event ^ m.cpu;
    benchmark::DoNotOptimize(checksum);
  }
  ReportRecords(state, records.size());
}
BENCHMARK(BM_WalkInMemory)->Unit(benchmark::kMillisecond);

void BM_Engine(benchmark::State& state) {
  const std::vector<tracefmt::MergedRecord>& records = MergedInMemory();
  for (auto _ : state) {
    xenbaked::AccountingEngine engine({.cpu_khz = kCpuKhz});
    for (const tracefmt::MergedRecord& m : records) engine.Add(m);
    benchmark::DoNotOptimize(engine.now_tsc());
  }
  ReportRecords(state, records.size());
}
BENCHMARK(BM_Engine)->Unit(benchmark::kMillisecond);

void BM_AccountFile(benchmark::State& state) {
  uint64_t records = 0;
  for (auto _ : state) {
    auto result = dom0tools::AccountFile(Capture(), kCpuKhz);
    if (!result) return state.SkipWithError(result.error().Describe().c_str());
    records = result->totals.records;
    benchmark::DoNotOptimize(result->totals.domains.data());
  }
  ReportRecords(state, records);
}
BENCHMARK(BM_AccountFile)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  std::string generate;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--records=", 10) == 0) {
      g_records = std::strtoull(argv[i] + 10, nullptr, 10);
    } else if (std::strncmp(argv[i], "--capture=", 10) == 0) {
      g_capture = argv[i] + 10;
    } else if (std::strncmp(argv[i], "--generate=", 11) == 0) {
      generate = argv[i] + 11;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (!generate.empty()) {
    tracefmt::bench::SyntheticSpec spec;
    spec.records = g_records;
    auto written = tracefmt::bench::WriteSyntheticCapture(generate, spec);
    if (!written) {
      std::fprintf(stderr, "%s\n", written.error().Describe().c_str());
      return 1;
    }
    return 0;
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_generated) std::filesystem::remove(g_capture);
  return 0;
}
