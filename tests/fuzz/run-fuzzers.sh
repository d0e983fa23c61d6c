#!/usr/bin/env bash
# Builds the tree with Clang (ASan + UBSan, coverage for libFuzzer, warnings as errors): every
# product target and every libFuzzer target, so CI compiles the whole product with a second
# compiler here; then runs each fuzzer for a bounded time, seeded from the committed corpus.
# Usage: run-fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET]
# BUILD_DIR is configured for fuzzing (no tests, no benchmarks); another kind of build there is
# refused rather than reconfigured.
# A crash, leak or sanitizer report fails the run; the reproducer is left in BUILD_DIR/crashes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
seconds="${2:-60}"
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^XENBAKED_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "run-fuzzers: $build is not configured with -DXENBAKED_FUZZ=ON" >&2
  exit 2
fi
# Configured as scripts/build.sh configures every build (Release, -g1, warnings as errors), and
# built whole: every product target and every fuzzer.
CC=clang CXX=clang++ "$root/scripts/build.sh" "$build" -DXENBAKED_FUZZ=ON -DXENBAKED_SANITIZE=ON \
  -DXENBAKED_TESTS=OFF -DXENBAKED_BENCHMARKS=OFF
targets=(trace_decoder_fuzzer)
targets+=(acctlog_report_fuzzer)
targets+=(api_request_fuzzer)
targets+=(accounting_engine_fuzzer)
mkdir -p "$build/crashes"
# Each target's committed seeds: trace files for the decoders, request lines for the API.
seeds() {
  case "$1" in
    api_request_fuzzer) echo "$root/tests/data/api_requests" ;;
    *) echo "$root/tests/data/slices $root/tests/data/broken" ;;
  esac
}
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  echo "fuzz: $t for ${seconds}s"
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 \
    "$corpus" $(seeds "$t") 2>&1 | tail -n 12
done
