#!/usr/bin/env bash
# Builds the tree with Clang (ASan + UBSan, coverage for libFuzzer, warnings as errors): every
# product target and every libFuzzer target, so CI compiles the whole product with a second
# compiler here; then runs each fuzzer for a bounded time, seeded from the committed corpus.
# Usage: run-fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET]
# BUILD_DIR may be a build already configured with -DXENBAKED_FUZZ=ON; otherwise it is
# configured without tests and benchmarks.
# A crash, leak or sanitizer report fails the run; the reproducer is left in BUILD_DIR/crashes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
seconds="${2:-60}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DXENBAKED_FUZZ=ON -DXENBAKED_SANITIZE=ON -DXENBAKED_WERROR=ON -DXENBAKED_TESTS=OFF \
    -DXENBAKED_BENCHMARKS=OFF >/dev/null
elif ! grep -q '^XENBAKED_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "run-fuzzers: $build is not configured with -DXENBAKED_FUZZ=ON" >&2
  exit 2
fi
targets=(trace_decoder_fuzzer)
targets+=(acctlog_report_fuzzer)
targets+=(api_request_fuzzer)
targets+=(accounting_engine_fuzzer)
cmake --build "$build" -j "$(nproc)"
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
