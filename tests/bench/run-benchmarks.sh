#!/usr/bin/env bash
# Builds tracefmt_benchmark in Release, runs it, then runs Debian's xenalyze --summary on the same
# generated capture and prints the ratio of their per-record costs; finally scans a multi-GB
# capture once to show memory stays flat in file size.
#
#   tests/bench/run-benchmarks.sh [RECORDS]          default 4,000,000 records (~84 MB)
#   BIG_RECORDS=0 tests/bench/run-benchmarks.sh      skip the multi-GB memory check
#
# Environment: BUILD_DIR (default build-bench), BIG_RECORDS (default 120,000,000: ~2.5 GB),
# XENALYZE (a xenalyze binary; otherwise /usr/bin/xenalyze or one unpacked from Debian's
# xen-utils-common into ~/.cache/xenbaked, never installed on the host).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
records=${1:-4000000}
build=${BUILD_DIR:-$root/build-bench}
big_records=${BIG_RECORDS:-120000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Release at -O2 (Debian's optimisation level): GCC 12 at -O3 reports a false
# -Wstringop-overflow in tracefmt/src/acctlog.cc, which -Werror turns into a build failure.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DXENBAKED_BENCHMARKS=ON >/dev/null
cmake --build "$build" --target tracefmt_benchmark -j2 >/dev/null
bench=$build/tests/bench/tracefmt_benchmark

# shellcheck source=tests/bench/find-xenalyze.sh
source "$root/tests/bench/find-xenalyze.sh"

echo "== tracefmt_benchmark ($records records)"
"$bench" --records="$records" --benchmark_min_time=1 --benchmark_counters_tabular=true \
  --benchmark_out="$work/bench.csv" --benchmark_out_format=csv

capture=$work/capture.bin
"$bench" --generate="$capture" --records="$records" >/dev/null
xenalyze=$(find_xenalyze || true)
if [[ -n $xenalyze ]]; then
  echo "== xenalyze --summary on the same capture ($xenalyze)"
  # CPU time (user + system), comparable with the benchmark's CPU-time rates on a shared machine.
  cpu_seconds=$( { TIMEFORMAT='%U %S'; time "$xenalyze" --summary "$capture" >/dev/null \
    2>"$work/xenalyze.err"; } 2>&1 | awk '{ print $1 + $2 }')
  # ns per record of each benchmark, from the CSV's header-named columns (seconds per record).
  awk -F, -v cpu="$cpu_seconds" -v n="$records" '
    /^name,/ { for (i = 1; i <= NF; i++) col[$i] = i; next }
    col["name"] && $1 ~ /BM_Decode"?$/ { d = $col["\"ns_per_record\""] * 1e9 }
    col["name"] && $1 ~ /BM_DecodeMerge"?$/ { m = $col["\"ns_per_record\""] * 1e9 }
    END {
      x = cpu * 1e9 / n
      printf "xenalyze --summary: %.1f ns/record (%.2f s CPU for %d records)\n", x, cpu, n
      if (d > 0) printf "ratio xenalyze / tracefmt decode:         %.1fx\n", x / d
      if (m > 0) printf "ratio xenalyze / tracefmt decode + merge: %.1fx\n", x / m
    }' "$work/bench.csv"
  if grep -qiE "warn|error" "$work/xenalyze.err"; then
    echo "xenalyze warnings:"; grep -iE "warn|error" "$work/xenalyze.err" | head
  fi
else
  echo "== xenalyze not available: ratio skipped"
fi

if [[ $big_records -gt 0 ]]; then
  big=$work/big.bin
  echo "== memory: one merge + summary pass over $big_records records"
  "$bench" --generate="$big" --records="$big_records" >/dev/null
  ls -l "$big" | awk '{printf "file_bytes %d (%.2f GB)\n", $5, $5 / 1e9}'
  "$bench" --scan="$big"
fi
