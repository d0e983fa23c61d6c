// Throughput of tracefmt's hot paths on a generated capture (tests/bench/synthetic_capture.h).
// Not part of the pass/fail suite; tests/bench/run-benchmarks.sh runs it with xenalyze beside it.
//
//   tracefmt_benchmark [--records=N] [benchmark flags]   benchmarks (default 4,000,000 records)
//   tracefmt_benchmark --capture=PATH [benchmark flags]  benchmarks on an existing capture
//   tracefmt_benchmark --generate=PATH [--records=N]      only writes the capture
//   tracefmt_benchmark --scan=PATH                        merges + summarises PATH once and prints
//                                                         records, seconds and max RSS
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "synthetic_capture.h"
#include "tracefmt/merge.h"
#include "tracefmt/ring.h"
#include "tracefmt/summary.h"
#include "tracefmt/trace_file.h"

namespace {

using namespace tracefmt;

uint64_t g_records = 4'000'000;
std::string g_capture;  // given (--capture), or generated once and removed at exit
bool g_given = false;

const std::string& Capture() {
  if (g_capture.empty()) {
    g_capture = (std::filesystem::temp_directory_path() /
                 ("tracefmt-bench-" + std::to_string(::getpid()) + ".bin"))
                    .string();
    bench::SyntheticSpec spec;
    spec.records = g_records;
    auto written = bench::WriteSyntheticCapture(g_capture, spec);
    if (!written) {
      std::fprintf(stderr, "cannot write %s: %s\n", g_capture.c_str(),
                   written.error().Describe().c_str());
      std::exit(1);
    }
  }
  return g_capture;
}

TraceFileReader OpenCapture(benchmark::State& state) {
  auto reader = TraceFileReader::Open(Capture());
  if (!reader) state.SkipWithError(reader.error().Describe().c_str());
  return std::move(*reader);
}

void ReportRecords(benchmark::State& state, uint64_t records_per_iteration) {
  const auto total = static_cast<double>(records_per_iteration * state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(total));
  state.counters["records_per_s"] = benchmark::Counter(total, benchmark::Counter::kIsRate);
  state.counters["ns_per_record"] =
      benchmark::Counter(total, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["file_MB"] = static_cast<double>(std::filesystem::file_size(Capture())) / 1e6;
}

// Decode as a user of the library walks a file: every chunk of the file reader, every record
// through RecordCursor, each handed to `touch`, which returns what it read. `Rec` is RecordRef
// (in place) or Record (a decoded copy).
template <typename Rec, typename Touch>
void WalkCapture(benchmark::State& state, Touch touch) {
  TraceFileReader reader = OpenCapture(state);
  uint64_t records = 0;
  for (auto _ : state) {
    reader.Rewind();
    records = 0;
    uint64_t checksum = 0;
    Chunk chunk;
    Rec rec;
    while (reader.Next(chunk)) {
      RecordCursor cursor(chunk.bytes);
      while (cursor.Next(rec)) {
        checksum += touch(rec);
        ++records;
      }
    }
    benchmark::DoNotOptimize(checksum);
  }
  ReportRecords(state, records);
}

// Decode alone, every field read in place: the event, the TSC when there is one and each extra
// word, so nothing a consumer would load is left out.
void BM_Decode(benchmark::State& state) {
  WalkCapture<RecordRef>(state, [](const RecordRef& rec) {
    uint64_t sum = rec.event() + (rec.has_tsc() ? rec.Tsc() : 0);
    for (uint32_t i = 0; i < rec.extra_words(); ++i) sum += rec.Extra(i);
    return sum;
  });
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

// The walk alone: every record's header and TSC, no extra word (what a consumer that filters on
// the event pays for the records it skips).
void BM_DecodeWalk(benchmark::State& state) {
  WalkCapture<RecordRef>(
      state, [](const RecordRef& rec) { return rec.event() + (rec.has_tsc() ? rec.Tsc() : 0); });
}
BENCHMARK(BM_DecodeWalk)->Unit(benchmark::kMillisecond);

// The same walk, each record decoded into a tracefmt::Record (a copy that outlives the file's
// bytes: what a consumer that keeps records pays).
void BM_DecodeCopy(benchmark::State& state) {
  WalkCapture<Record>(state, [](const Record& rec) {
    uint64_t sum = rec.event + rec.tsc;
    for (uint32_t w : rec.Data()) sum += w;
    return sum;
  });
}
BENCHMARK(BM_DecodeCopy)->Unit(benchmark::kMillisecond);

// MergedTraceReader: decode and merge all CPUs by TSC.
void BM_DecodeMerge(benchmark::State& state) {
  TraceFileReader reader = OpenCapture(state);
  uint64_t records = 0;
  for (auto _ : state) {
    reader.Rewind();
    MergedTraceReader merged(reader);
    MergedRecord m;
    records = 0;
    uint64_t checksum = 0;
    while (merged.Next(m)) {
      checksum += m.rec.event + m.tsc;
      ++records;
    }
    benchmark::DoNotOptimize(checksum);
  }
  ReportRecords(state, records);
}
BENCHMARK(BM_DecodeMerge)->Unit(benchmark::kMillisecond);

// MergedTraceReader::ForEach: the same merge, zero-copy (records read in place, in runs).
void BM_DecodeMergeForEach(benchmark::State& state) {
  TraceFileReader reader = OpenCapture(state);
  uint64_t records = 0;
  for (auto _ : state) {
    reader.Rewind();
    MergedTraceReader merged(reader);
    records = 0;
    uint64_t checksum = 0;
    merged.ForEach([&](uint32_t, uint64_t tsc, RecordRef rec) {
      checksum += rec.event() + tsc;
      ++records;
    });
    benchmark::DoNotOptimize(checksum);
  }
  ReportRecords(state, records);
}
BENCHMARK(BM_DecodeMergeForEach)->Unit(benchmark::kMillisecond);

// SummarizeTrace: what xenbake-dump --summary does.
void BM_Summary(benchmark::State& state) {
  TraceFileReader reader = OpenCapture(state);
  uint64_t records = 0;
  for (auto _ : state) {
    reader.Rewind();
    const TraceSummary s = SummarizeTrace(reader);
    records = s.records - s.cpu_change_records;
    benchmark::DoNotOptimize(s.records);
  }
  ReportRecords(state, records);
}
BENCHMARK(BM_Summary)->Unit(benchmark::kMillisecond);

// DrainRing over a full 32-page ring (xentrace's default size) of the same record mix.
void BM_DrainRing(benchmark::State& state) {
  const uint32_t data_size = RingDataSize(32);
  std::vector<std::byte> data(data_size);
  std::mt19937 rng(7);
  bench::SyntheticCpu cpu;
  uint32_t prod = 0;
  uint64_t ring_records = 0;
  for (;;) {
    const Record r = bench::NextSyntheticRecord(rng, cpu);
    if (prod + r.SizeBytes() > data_size) break;
    prod += static_cast<uint32_t>(EncodeRecord(r, std::span<std::byte>(data).subspan(prod)));
    ++ring_records;
  }
  for (auto _ : state) {
    uint64_t checksum = 0;
    const RingDrain d = DrainRing(
        data, /*cons_untrusted=*/0, prod, /*max_bytes=*/data_size,
        [](std::span<const std::byte>) {}, [&](const Record& rec) { checksum += rec.tsc; });
    benchmark::DoNotOptimize(checksum);
    benchmark::DoNotOptimize(d.new_cons);
  }
  state.SetItemsProcessed(static_cast<int64_t>(ring_records * state.iterations()));
  state.counters["ns_per_record"] =
      benchmark::Counter(static_cast<double>(ring_records * state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_DrainRing);

// One pass of merge + summary over `path`, then what it cost: for files too large to benchmark
// repeatedly, and to show that memory stays flat in the file size.
int Scan(const std::string& path) {
  auto reader = TraceFileReader::Open(path);
  if (!reader) {
    std::fprintf(stderr, "%s\n", reader.error().Describe().c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  MergedTraceReader merged(*reader);
  uint64_t merged_records = 0;
  merged.ForEach([&](uint32_t, uint64_t, RecordRef) { ++merged_records; });
  const auto mid = std::chrono::steady_clock::now();
  reader->Rewind();
  const TraceSummary s = SummarizeTrace(*reader);
  const auto end = std::chrono::steady_clock::now();
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const double merge_s = std::chrono::duration<double>(mid - start).count();
  const double summary_s = std::chrono::duration<double>(end - mid).count();
  std::printf(
      "file_bytes %llu\nrecords %llu\nmerge_seconds %.3f\nmerge_records_per_second %.0f\n"
      "summary_seconds %.3f\nmax_rss_kib %ld\n",
      static_cast<unsigned long long>(reader->size()),
      static_cast<unsigned long long>(merged_records), merge_s, merged_records / merge_s, summary_s,
      usage.ru_maxrss);
  return s.anomalies.empty() && !merged.error() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string generate;
  std::string scan;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--records=", 10) == 0) {
      g_records = std::strtoull(argv[i] + 10, nullptr, 10);
    } else if (std::strncmp(argv[i], "--generate=", 11) == 0) {
      generate = argv[i] + 11;
    } else if (std::strncmp(argv[i], "--capture=", 10) == 0) {
      g_capture = argv[i] + 10;
      g_given = true;
    } else if (std::strncmp(argv[i], "--scan=", 7) == 0) {
      scan = argv[i] + 7;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (!scan.empty()) return Scan(scan);
  if (!generate.empty()) {
    bench::SyntheticSpec spec;
    spec.records = g_records;
    auto written = bench::WriteSyntheticCapture(generate, spec);
    if (!written) {
      std::fprintf(stderr, "%s\n", written.error().Describe().c_str());
      return 1;
    }
    std::printf("%llu records\n", static_cast<unsigned long long>(*written));
    return 0;
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!g_capture.empty() && !g_given) std::filesystem::remove(g_capture);
  return 0;
}
