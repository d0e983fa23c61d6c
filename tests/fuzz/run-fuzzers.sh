#!/usr/bin/env bash
# Builds every libFuzzer target (clang, ASan + UBSan) and runs each for a bounded time, seeded
# from the committed corpus. Usage: run-fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET]
# A crash, leak or sanitizer report fails the run; the reproducer is left in BUILD_DIR/crashes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
seconds="${2:-60}"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DXENBAKED_FUZZ=ON -DXENBAKED_SANITIZE=ON -DXENBAKED_TESTS=OFF -DXENBAKED_BENCHMARKS=OFF \
  >/dev/null
targets=(trace_decoder_fuzzer accounting_engine_fuzzer)
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
mkdir -p "$build/crashes"
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  echo "fuzz: $t for ${seconds}s"
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 \
    "$corpus" "$root/tests/data/slices" "$root/tests/data/broken" 2>&1 | tail -n 12
done
